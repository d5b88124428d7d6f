// Runs the pure parts of Pier's hot paths on sample input while the startup snapshot is built.
// V8 keeps the bytecode of every function compiled by then in the snapshot; a function first
// called at run time is parsed and compiled on every plugin run instead (measured: parsing the
// network config took 2.2 ms cold, 0.7 ms warmed). Nothing here changes the kernel or the
// environment, no file but in a temp directory it removes, and nothing is cached: libc refuses
// every system call meanwhile (a native addon cannot be in a snapshot anyway), so each command
// stops at its first kernel step.
import { runPlugin } from './cni/plugin.ts';
import { blockSystemCalls } from './netlink/libc.ts';
import { createLogger } from './cni/log.ts';
import { parseNetConf, requestedIps, requestedMac } from './cni/config.ts';
import { parseCniArgs } from './cni/cni-args.ts';
import { convertResult, parsePrevResult, type CniResult } from './cni/result.ts';
import { writeResult, writeError } from './cni/output.ts';
import { CniError, ErrorCode } from './cni/errors.ts';
import { ipamPlan } from './cni/commands/context.ts';
import { natAttachment } from './cni/commands/nat-spec.ts';
import type { NatDriver } from './cni/commands/nat.ts';
import { getAttachment, ipamAdd, ipamDel, type IpamDeps } from './ipam/ipam.ts';
import { openDiskStore, type Locker } from './ipam/disk-store.ts';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from './ipam/memory-store.ts';
import { attachmentRecordSchema } from './ipam/attachment.ts';
import { randomHostVethName } from './bridge/veth.ts';
import { networkOf } from './bridge/subnet.ts';
import { buildAddr, buildAddrDump, decodeAddrMessage, addressFromMessage } from './netlink/addr-codec.ts';
import { buildLinkDump, buildLinkRef, buildNewBridge, buildNewVeth, buildSetBridgePort, buildSetLink, decodeLinkMessage, linkFromMessage } from './netlink/link-codec.ts';
import { buildRoute, buildRouteDump, decodeRouteMessage, routeFromMessage } from './netlink/route-codec.ts';
import { decodeMessages, encodeMessage } from './netlink/codec.ts';
import { encodeBatch } from './netlink/nfnetlink-batch.ts';
import { parseCidr } from './netlink/ip-bytes.ts';
import { buildNetworkSetup, setupMarkerOf } from './nft/build-network.ts';
import { attachmentElements, claimsOf, opsToCommands, planAttachmentAdd, planAttachmentDel, buildDocument } from './nft/build-attachment.ts';
import { buildElementMessages, NFNL_SUBSYS_NFTABLES } from './nft/netlink-elements.ts';
import { toAtt, toNft } from './nft/nat-driver.ts';

const sink = { write: (_text: string) => true };

const conf = {
  cniVersion: '1.0.0',
  name: 'pier-warm-up',
  type: 'pier',
  bridge: 'pierwarm0',
  isGateway: true,
  ipMasq: true,
  hairpinMode: true,
  mtu: 1500,
  nftTable: 'pier',
  capabilities: { portMappings: true },
  runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '198.51.100.1' }] },
  ipam: {
    type: 'pier-ipam',
    ranges: [[{ subnet: '10.99.0.0/24', gateway: '10.99.0.1' }], [{ subnet: 'fd00:99::/64' }]],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }],
    dataDir: '/nonexistent/pier-warm-up',
  },
};

const env = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'pier-warm-up',
  // A netns that cannot exist: every command stops at its first kernel step, before any change.
  CNI_NETNS: '/nonexistent/pier-warm-up/netns',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/nonexistent',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=warm',
  PIER_LOG_LEVEL: 'error',
  PIER_LOG_FILE: '/nonexistent/pier-warm-up/log',
};

/**
 * Runs every warm-up step; rejects if one throws where it should not (a build error). System
 * calls are refused throughout, also when this runs outside a snapshot build (its test).
 */
export async function warmUp(): Promise<void> {
  blockSystemCalls(true);
  try {
    await steps();
  } finally {
    blockSystemCalls(false);
  }
}

async function steps(): Promise<void> {
  const stdin = JSON.stringify(conf);
  // The command front half: version peek, env, config, logger, CNI_ARGS, IPAM plan, the error
  // reply. Each command stops at its first kernel step: the netns check, or libc's refusal.
  const nat: NatDriver = {
    needed: () => true,
    add: () => Promise.reject(new Error('warm-up: no NAT')),
    del: () => Promise.reject(new Error('warm-up: no NAT')),
  } as unknown as NatDriver;
  const memoryIpam = (): IpamDeps => ({ openStore: () => new MemoryStore(conf.name), bootId: 'warm-up', netnsExists: () => false });
  const runs = ['ADD', 'DEL', 'CHECK', 'VERSION'].map((command) =>
    runPlugin({ env: { ...env, CNI_COMMAND: command }, stdin, stdout: sink }, 'pier', (log) => ({ ipam: memoryIpam(), log, nat })),
  );

  const net = parseNetConf(stdin);
  const args = parseCniArgs(env.CNI_ARGS);
  requestedIps(net, args);
  requestedMac(net, args);
  const plan = ipamPlan(net);
  if (!plan.ipam) throw new Error('warm-up config lost its IPAM');

  // IPAM on a store in memory: allocation, the record, release.
  const key = { containerID: env.CNI_CONTAINERID, ifname: env.CNI_IFNAME };
  const store = new MemoryStore(net.name);
  const ipamDeps: IpamDeps = { openStore: () => store, bootId: 'warm-up', netnsExists: () => false };
  const hostVeth = randomHostVethName();
  const ipam = ipamAdd(ipamDeps, plan.ipam, { ...key, hostVeth, netnsPath: env.CNI_NETNS, portMappings: net.runtimeConfig.portMappings ?? [] });
  const record = store.records.values().next().value;
  attachmentRecordSchema.parse(JSON.parse(JSON.stringify(record)));
  ipamDel(ipamDeps, plan.ipam, key);

  // The same on the disk store, in a temp directory removed at once, locked without flock: a
  // first ADD (a new store), a second, a DEL, with the record read back as DEL and CHECK do.
  const dir = mkdtempSync(join(tmpdir(), 'pier-warm-up-'));
  try {
    const locker: Locker = {
      acquire: (path) => ({ fd: openSync(path, 'a+', 0o600), readOnly: false }),
      release: (fd) => closeSync(fd),
    };
    const disk: IpamDeps = { ...ipamDeps, openStore: (dataDir, network) => openDiskStore(dataDir, network, { locker }) };
    const where = { ...plan.ipam, dataDir: dir };
    for (const containerID of ['warm-up-1', 'warm-up-2']) {
      ipamAdd(disk, where, { containerID, ifname: 'eth0', hostVeth, netnsPath: env.CNI_NETNS, portMappings: net.runtimeConfig.portMappings ?? [] });
    }
    getAttachment(disk, where, { containerID: 'warm-up-1', ifname: 'eth0' });
    ipamDel(disk, where, { containerID: 'warm-up-1', ifname: 'eth0' });
    ipamDel(disk, where, { containerID: 'warm-up-3', ifname: 'eth0' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // The netlink messages of a pod's wiring, encoded and decoded as the kernel would echo them.
  const msgs = [
    buildNewBridge({ name: net.bridge, mtu: 1500 }),
    buildNewVeth({ name: 'eth0', mtu: 1500, peer: { name: hostVeth, netnsFd: 3 } }),
    buildSetLink({ index: 7, up: true, master: 3 }),
    buildSetBridgePort({ index: 7, hairpin: true, isolated: false }),
    buildLinkRef({ name: 'eth0' }),
    buildLinkDump({ master: 3 }),
  ];
  for (const payload of msgs) {
    const [m] = decodeMessages(encodeMessage({ type: 16, flags: 1, seq: 1, pid: 0, payload }));
    linkFromMessage(decodeLinkMessage(m.payload));
  }
  for (const ip of ipam.ips) {
    const cidr = parseCidr(ip.address);
    const a = buildAddr({ index: 7, cidr: ip.address });
    addressFromMessage(decodeAddrMessage(a));
    buildAddrDump({ family: cidr.family, index: 7 });
    const r = buildRoute({ dst: networkOf(ip.address), gw: ip.gateway, oif: 7 });
    routeFromMessage(decodeRouteMessage(r));
    buildRouteDump({ family: cidr.family });
  }

  // NAT: the network's setup and marker, the attachment's element batch for ADD and DEL.
  const natNet = { name: net.name, bridge: net.bridge, subnets: ipam.ips.map((i) => networkOf(i.address)), ipMasq: true, portMappings: true, table: 'pier' };
  const natAtt = natAttachment(key, ipam.ips.map((i) => i.address), net.runtimeConfig.portMappings ?? []);
  const nftNet = toNft(natNet);
  const nftAtt = toAtt(natAtt);
  const setup = buildNetworkSetup(nftNet);
  setupMarkerOf(setup);
  const addPlan = planAttachmentAdd(nftNet, nftAtt);
  buildDocument([...setup, ...opsToCommands(addPlan)]);
  encodeBatch(NFNL_SUBSYS_NFTABLES, buildElementMessages(addPlan), 1, true);
  const els = attachmentElements(nftNet, nftAtt);
  encodeBatch(NFNL_SUBSYS_NFTABLES, buildElementMessages(planAttachmentDel(nftNet, [...els, ...claimsOf(els)])), 1, true);

  // The reply in every version, and a prevResult read back.
  const result: CniResult = {
    interfaces: [{ name: net.bridge, mac: '02:00:00:00:00:01' }, { name: hostVeth, mac: '02:00:00:00:00:02' }, { name: 'eth0', mac: '02:00:00:00:00:03', sandbox: env.CNI_NETNS }],
    ips: ipam.ips.map((i) => ({ ...i, interface: 2 })),
    routes: ipam.routes,
    dns: ipam.dns,
  };
  for (const v of ['0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const out = convertResult(result, v);
    writeResult(sink, out);
    parsePrevResult(out, v);
  }
  writeError(sink, new CniError(ErrorCode.InvalidConfig, 'warm-up', 'details'), '1.0.0');
  createLogger({ level: 'error', file: env.PIER_LOG_FILE }).debug('warm-up');
  await Promise.all(runs);
}

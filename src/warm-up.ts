// Runs the pure parts of Pier's hot paths on sample input while the startup snapshot is built.
// V8 keeps the bytecode of every function compiled by then in the snapshot; a function first
// called at run time is parsed and compiled on every plugin run instead (measured: parsing the
// network config took 2.2 ms cold, 0.7 ms warmed). Nothing here changes the kernel or the
// environment, no file but in a temp directory it removes, and nothing is cached: libc refuses
// every system call meanwhile (a native addon cannot be in a snapshot anyway), so each command
// stops at its first kernel step.
import { runPlugin } from './cni/plugin.ts';
import { readStdin, syncWriter } from './main.ts';
import { useFakeSystemCalls } from './netlink/libc.ts';
import { fakeKernel } from './warm-up-kernel.ts';
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
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from './ipam/memory-store.ts';
import { attachmentRecordSchema } from './ipam/attachment.ts';
import { randomHostVethName } from './bridge/veth.ts';
import { networkOf } from './bridge/subnet.ts';
import { applyElementBatch, closeElementSocket } from './nft/netlink-apply.ts';
import { buildNetworkSetup, setupMarkerOf } from './nft/build-network.ts';
import { attachmentElements, claimsOf, opsToCommands, planAttachmentAdd, planAttachmentDel, buildDocument } from './nft/build-attachment.ts';
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

/** What each warm-up plugin run replied, by command (for the warm-up's test). */
export interface WarmUpReport {
  replies: Record<string, string>;
}

/**
 * Runs every warm-up step; rejects if one throws where it should not (a build error). Every
 * system call goes to the pretend kernel meanwhile, also when this runs outside a snapshot build
 * (its test); the only files touched are in a temp directory removed at the end.
 */
export async function warmUp(): Promise<WarmUpReport> {
  const dir = mkdtempSync(join(tmpdir(), 'pier-warm-up-'));
  useFakeSystemCalls(fakeKernel());
  try {
    return await steps(dir);
  } finally {
    // The kept nf_tables socket is a pretend one now: it must not outlive the stand-in.
    closeElementSocket();
    useFakeSystemCalls(undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function steps(dir: string): Promise<WarmUpReport> {
  const stdin = JSON.stringify(conf);
  const env = {
    CNI_CONTAINERID: 'pier-warm-up',
    // A plain file: the pretend kernel calls anything a netns (NS_GET_NSTYPE), and it is not
    // the netns Pier runs in, which ADD refuses.
    CNI_NETNS: join(dir, 'netns'),
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/nonexistent',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=warm',
    PIER_LOG_LEVEL: 'debug',
    PIER_LOG_FILE: join(dir, 'pier.log'),
  };
  writeFileSync(env.CNI_NETNS, '');
  // How main() reads stdin and writes the reply, on a file of the temp directory.
  const io = join(dir, 'io');
  writeFileSync(io, stdin);
  const ioFd = openSync(io, 'r+');
  try {
    if (readStdin(ioFd).toString() !== stdin) throw new Error('warm-up: readStdin');
    syncWriter(ioFd).write('{}\n');
  } finally {
    closeSync(ioFd);
  }

  // The commands end to end, against the pretend kernel and a store in memory. NAT is a no-op
  // here: its planning and encoding are warmed below, its lock and socket need the real kernel.
  const nat: NatDriver = {
    needed: () => true,
    add: async () => {},
    del: async () => {},
    check: async () => [],
    gc: async () => {},
    status: async () => undefined,
  };
  const shared = new MemoryStore(conf.name);
  const memoryIpam: IpamDeps = { openStore: () => shared, bootId: 'warm-up', netnsExists: () => true };
  const replies: Record<string, string> = {};
  for (const command of ['ADD', 'CHECK', 'DEL', 'DEL again', 'VERSION']) {
    let out = '';
    const stdout = { write: (text: string) => ((out += text), true) };
    const cniCommand = command.split(' ')[0];
    // CHECK gets the ADD's result as prevResult, as a runtime sends it.
    const input = cniCommand === 'CHECK' && replies.ADD ? JSON.stringify({ ...conf, prevResult: JSON.parse(replies.ADD) }) : stdin;
    await runPlugin({ env: { ...env, CNI_COMMAND: cniCommand }, stdin: input, stdout }, 'pier', (log) => ({ ipam: memoryIpam, log, nat }));
    replies[command] = out;
  }

  const net = parseNetConf(stdin);
  const args = parseCniArgs(env.CNI_ARGS);
  requestedIps(net, args);
  requestedMac(net, args);
  const plan = ipamPlan(net, 'ADD');
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

  // The same on the disk store (in the temp directory), locked without flock: a first ADD (a new
  // store), a second, a DEL, with the record read back as DEL and CHECK do.
  {
    const locker: Locker = {
      acquire: (path) => ({ fd: openSync(path, 'a+', 0o600), readOnly: false }),
      release: (fd) => closeSync(fd),
    };
    const disk: IpamDeps = { ...ipamDeps, openStore: (dataDir, network) => openDiskStore(dataDir, network, { locker }) };
    const where = { ...plan.ipam, dataDir: join(dir, 'store') };
    for (const containerID of ['warm-up-1', 'warm-up-2']) {
      ipamAdd(disk, where, { containerID, ifname: 'eth0', hostVeth, netnsPath: env.CNI_NETNS, portMappings: net.runtimeConfig.portMappings ?? [] });
    }
    getAttachment(disk, where, { containerID: 'warm-up-1', ifname: 'eth0' });
    ipamDel(disk, where, { containerID: 'warm-up-1', ifname: 'eth0' });
    ipamDel(disk, where, { containerID: 'warm-up-3', ifname: 'eth0' });
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
  // Sent as the fast path sends them, to the pretend kernel (the socket is closed again in warmUp).
  applyElementBatch(addPlan);
  const els = attachmentElements(nftNet, nftAtt);
  applyElementBatch(planAttachmentDel(nftNet, [...els, ...claimsOf(els)]));

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
  return { replies };
}

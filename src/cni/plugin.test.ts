// The plugin end to end in-process (runPlugin), as `pier` and as `pier-ipam`: the kernel is the
// warm-up's pretend one, the store is in memory, NAT is a recording fake. What the real kernel
// then does is the e2e tier's job; this tier pins what Pier decides from a config.
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPlugin, type PluginMode } from './plugin.ts';
import type { NatDriver, NatNetwork } from './commands/nat.ts';
import { MemoryStore } from '../ipam/memory-store.ts';
import type { IpamDeps } from '../ipam/ipam.ts';
import { useFakeSystemCalls } from '../netlink/libc.ts';
import { fakeKernel } from '../warm-up-kernel.ts';

const dir = mkdtempSync(join(tmpdir(), 'pier-plugin-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** One test's world: stores by `<dataDir>/<network>`, NAT calls, a pod netns stand-in. */
class World {
  readonly stores = new Map<string, MemoryStore>();
  readonly natCalls: Array<{ op: string; net: NatNetwork; arg?: unknown }> = [];
  natGcError: Error | undefined;
  readonly netns = join(dir, `netns-${Math.random().toString(16).slice(2)}`);

  constructor() {
    // A plain file: the pretend kernel calls anything a netns, and it is not Pier's own.
    writeFileSync(this.netns, '');
  }

  store(dataDir: string, network: string): MemoryStore {
    const key = `${dataDir}/${network}`;
    if (!this.stores.has(key)) this.stores.set(key, new MemoryStore(network));
    return this.stores.get(key)!;
  }

  readonly nat: NatDriver = {
    needed: (net, att) => net.ipMasq || Boolean(att?.portMappings.length),
    add: async (net, att) => void this.natCalls.push({ op: 'add', net, arg: att }),
    del: async (net, key) => void this.natCalls.push({ op: 'del', net, arg: key }),
    check: async () => [],
    gc: async (net, valid) => {
      this.natCalls.push({ op: 'gc', net, arg: valid });
      if (this.natGcError) throw this.natGcError;
    },
    status: async () => undefined,
  };

  async call(
    command: string,
    conf: Record<string, unknown>,
    o: { mode?: PluginMode; containerId?: string; ifname?: string; env?: Record<string, string> } = {},
  ): Promise<{ code: number; reply: any }> {
    const env: Record<string, string> = {
      CNI_COMMAND: command,
      CNI_PATH: join(dir, 'no-plugins-here'),
      PIER_LOG_FILE: join(dir, 'pier.log'),
      ...o.env,
    };
    if (['ADD', 'DEL', 'CHECK'].includes(command)) {
      env.CNI_CONTAINERID = o.containerId ?? 'c1';
      // The pretend kernel has one namespace for everything: each pod needs its own name.
      env.CNI_IFNAME = o.ifname ?? ifnameOf(env.CNI_CONTAINERID);
      env.CNI_NETNS = this.netns;
    }
    let out = '';
    const ipam: IpamDeps = { openStore: (d, n) => this.store(d, n), bootId: 'test-boot', netnsExists: () => true };
    const code = await runPlugin({ env, stdin: JSON.stringify(conf), stdout: { write: (s: string) => ((out += s), true) } }, o.mode ?? 'pier', (log) => ({ ipam, log, nat: this.nat }));
    return { code, reply: out.trim() ? JSON.parse(out) : undefined };
  }
}

/** The pod interface of each test container. */
const ifnameOf = (containerID: string) => `eth-${containerID}`;

let world: World;
beforeEach(() => {
  world = new World();
  useFakeSystemCalls(fakeKernel());
});
afterEach(() => useFakeSystemCalls(undefined));

const DATA = '/pier-test/data';

function conf(extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: '1.1.0',
    name: 'unitnet',
    type: 'pier',
    bridge: 'unitbr0',
    isGateway: true,
    ipam: { type: 'pier-ipam', ranges: [[{ subnet: '10.124.9.0/24' }]], dataDir: DATA, ...ipam },
    ...extra,
  };
}

function ok(r: { code: number; reply: any }, what: string): any {
  assert.equal(r.code, 0, `${what}: ${JSON.stringify(r.reply)}`);
  return r.reply;
}

function fails(r: { code: number; reply: any }, code: number, what: string): any {
  assert.notEqual(r.code, 0, `${what} should fail: ${JSON.stringify(r.reply)}`);
  assert.equal(r.reply?.code, code, `${what}: ${JSON.stringify(r.reply)}`);
  return r.reply;
}

const addresses = (res: any): string[] => res.ips.map((i: { address: string }) => i.address);
const reserved = (s: MemoryStore): string[] => [...s.reservations.keys()].sort();

describe('GC without cni.dev/valid-attachments', () => {
  for (const mode of ['pier', 'pier-ipam'] as const) {
    it(`${mode}: is refused with code 7 saying what to do, and releases nothing`, async () => {
      ok(await world.call('ADD', conf(), { mode }), 'ADD');
      const e = fails(await world.call('GC', conf(), { mode }), 7, 'GC without a list');
      assert.match(e.msg, /cni\.dev\/valid-attachments/);
      assert.match(`${e.msg} ${e.details}`, /cnitool/);
      assert.match(`${e.msg} ${e.details}`, /pier gc/);
      assert.deepEqual(reserved(world.store(DATA, 'unitnet')), ['10.124.9.2']);
      // An explicit empty list is the way to say "nothing is valid".
      ok(await world.call('GC', { ...conf(), 'cni.dev/valid-attachments': [] }, { mode }), 'GC with []');
      assert.deepEqual(reserved(world.store(DATA, 'unitnet')), []);
    });
  }
});

describe('GC', () => {
  it('carries on past a failed step and reports every error', async () => {
    // A delegated IPAM that is not in CNI_PATH, and an nft failure.
    const c = conf({ ipMasq: true, dataDir: DATA, ipam: { type: 'missing-ipam' } });
    const rec = world.store(DATA, 'unitnet');
    rec.save({
      containerID: 'gone', ifname: 'eth0', network: 'unitnet', ips: [], hostVeth: 'veth0badc0de', portMappings: [], ipMasq: true,
      bridge: 'unitbr0', bootId: 'test-boot', createdAt: new Date(0).toISOString(), extra: { ips: ['10.124.9.7/24'] },
    });
    world.natGcError = new Error('nft exploded');
    const e = fails(await world.call('GC', { ...c, 'cni.dev/valid-attachments': [] }), 7, 'GC');
    assert.match(e.msg, /missing-ipam/);
    assert.match(e.msg, /nft exploded/);
    // The steps after the failed delegate still ran.
    assert.equal(rec.records.size, 0, "Pier's own record was released");
    assert.ok(world.natCalls.some((x) => x.op === 'gc'), 'NAT GC ran');
  });
});

describe('keys match case-insensitively at every depth, as Go decodes them', () => {
  it('in ipam, dns, vlanTrunk, and the top-level dataDir and nftTable', async () => {
    const c = {
      CNIVersion: '1.1.0',
      Name: 'unitnet',
      Type: 'pier',
      Bridge: 'unitbr0',
      IPMasq: true,
      DNS: { Nameservers: ['10.0.0.53'], Search: ['example.org'] },
      NftTable: 'pier_unit',
      IPAM: {
        Type: 'pier-ipam',
        Ranges: [[{ Subnet: '10.124.9.0/24', RangeStart: '10.124.9.20', Gateway: '10.124.9.1' }]],
        Routes: [{ Dst: '10.200.0.0/16', GW: '10.124.9.254', MTU: 1400 }],
        DataDir: DATA,
      },
    };
    const res = ok(await world.call('ADD', c), 'ADD');
    assert.deepEqual(addresses(res), ['10.124.9.20/24']);
    assert.deepEqual(res.routes, [{ dst: '10.200.0.0/16', gw: '10.124.9.254', mtu: 1400 }]);
    assert.deepEqual(res.dns, { nameservers: ['10.0.0.53'], search: ['example.org'] });
    assert.equal(world.natCalls.find((x) => x.op === 'add')?.net.table, 'pier_unit');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), ['10.124.9.20']);
  });

  it('in the top-level dataDir that holds the records of a network without Pier\'s IPAM', async () => {
    const c = { cniVersion: '1.1.0', name: 'unitnet', type: 'pier', bridge: 'unitbr0', DataDir: '/pier-test/own' };
    ok(await world.call('ADD', c), 'ADD with no IPAM');
    assert.equal(world.store('/pier-test/own', 'unitnet').records.size, 1);
    assert.equal(world.stores.get('/var/lib/pier/networks/unitnet'), undefined);
  });

  it('in the GC list and in prevResult', async () => {
    const a = ok(await world.call('ADD', conf(), { containerId: 'a' }), 'ADD');
    ok(await world.call('ADD', conf(), { containerId: 'b' }), 'ADD');
    const prev = { CNIVersion: a.cniVersion, Interfaces: a.interfaces.map((i: object) => ({ ...i })), IPs: a.ips.map((i: any) => ({ Address: i.address, Gateway: i.gateway, Interface: i.interface })), Routes: a.routes, DNS: a.dns };
    ok(await world.call('CHECK', { ...conf(), prevResult: prev }, { containerId: 'a' }), 'CHECK with capitalised prevResult keys');
    ok(await world.call('GC', { ...conf(), 'cni.dev/valid-attachments': [{ ContainerID: 'a', IfName: ifnameOf('a') }] }), 'GC');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), ['10.124.9.2']);
  });

  it('and a bad value behind a capitalised key is still refused, named by its canonical path', async () => {
    const e = fails(await world.call('ADD', conf({}, { ranges: undefined, Ranges: [[{ Subnet: '10.124.9.1/24' }]] })), 7, 'ADD');
    assert.match(`${e.msg} ${e.details}`, /ipam\.ranges\[0\]\[0\]\.subnet/);
  });
});

describe('pier-ipam ignores the fields of the plugin that calls it', () => {
  it('the reference bridge\'s (and other plugins\') own fields, valid or not for Pier', async () => {
    const caller = conf({
      type: 'bridge',
      macspoofchk: true,
      disableContainerInterface: true,
      hairpinMode: true,
      promiscMode: true,
      vlan: 5000,
      vlanTrunk: [{ id: 7 }],
      mtu: 'jumbo',
      bridge: 'a-bridge-name-longer-than-15',
      nftTable: 'not a table name!',
      dataDir: 'relative/dir',
      capabilities: { portMappings: 'yes' },
      runtimeConfig: { portMappings: [{ hostPort: 0 }], mac: 'not-a-mac', bandwidth: { ingressRate: -1 } },
      args: { cni: { mac: 'zz' } },
    });
    const res = ok(await world.call('ADD', caller, { mode: 'pier-ipam' }), 'ADD');
    assert.deepEqual(addresses(res), ['10.124.9.2/24']);
    ok(await world.call('CHECK', { ...caller, prevResult: res }, { mode: 'pier-ipam' }), 'CHECK');
    ok(await world.call('DEL', caller, { mode: 'pier-ipam' }), 'DEL');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), []);
  });

  it('but still refuses a bad field of its own', async () => {
    const e = fails(await world.call('ADD', conf({ type: 'bridge', macspoofchk: true, runtimeConfig: { ips: ['nope'] } }), { mode: 'pier-ipam' }), 7, 'ADD');
    assert.match(e.details, /runtimeConfig\.ips\[0\]/);
  });
});

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
  natDelError: Error | undefined;
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
    del: async (net, key) => {
      this.natCalls.push({ op: 'del', net, arg: key });
      if (this.natDelError) throw this.natDelError;
    },
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

describe('runtimeConfig.ipRanges', () => {
  const runtime = (ipRanges: unknown) => ({ capabilities: { ipRanges: true }, runtimeConfig: { ipRanges } });

  for (const mode of ['pier', 'pier-ipam'] as const) {
    it(`${mode}: replace the config's ranges (range sets, or containerd's flat list per family)`, async () => {
      const res = ok(await world.call('ADD', conf(runtime([[{ subnet: '10.77.0.0/24' }]])), { mode }), 'ADD');
      assert.deepEqual(addresses(res), ['10.77.0.2/24']);
      assert.equal(res.ips[0].gateway, '10.77.0.1');
      const flat = runtime([{ Subnet: '10.78.0.0/24', RangeStart: '10.78.0.10' }, { subnet: 'fd00:78::/64' }]);
      const dual = ok(await world.call('ADD', conf(flat), { mode, containerId: 'c2' }), 'ADD dual stack');
      assert.deepEqual(addresses(dual), ['10.78.0.10/24', 'fd00:78::2/64']);
      assert.deepEqual(reserved(world.store(DATA, 'unitnet')), ['10.77.0.2', '10.78.0.10', 'fd00:78::2']);
    });
  }

  it('set the NAT network\'s subnets on ADD, and land in the record for `pier resync`', async () => {
    const c = conf({ ipMasq: true, ...runtime([[{ subnet: '10.77.0.0/24' }]]) });
    ok(await world.call('ADD', c), 'ADD');
    const add = world.natCalls.find((x) => x.op === 'add')!;
    assert.deepEqual(add.net.subnets, ['10.77.0.0/24']);
    const rec = world.store(DATA, 'unitnet').get({ containerID: 'c1', ifname: ifnameOf('c1') })!;
    assert.deepEqual((rec.extra.nft as { subnets: string[] }).subnets, ['10.77.0.0/24']);
  });

  it('stand in for a config with no ranges (the kubelet\'s podCIDR); without either, ADD is code 7 naming both', async () => {
    const bare = conf(runtime([[{ subnet: '10.77.0.0/24' }]]));
    delete (bare.ipam as Record<string, unknown>).ranges;
    assert.deepEqual(addresses(ok(await world.call('ADD', bare), 'ADD')), ['10.77.0.2/24']);
    const none = conf();
    delete (none.ipam as Record<string, unknown>).ranges;
    const e = fails(await world.call('ADD', none, { containerId: 'c2' }), 7, 'ADD with no ranges at all');
    assert.match(`${e.msg} ${e.details}`, /ipam\.ranges/);
    assert.match(`${e.msg} ${e.details}`, /runtimeConfig\.ipRanges/);
    // The calls that carry no runtimeConfig still work on such a network.
    ok(await world.call('STATUS', none), 'STATUS');
    ok(await world.call('DEL', none), 'DEL without runtimeConfig');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), []);
  });

  it('keep ADD, CHECK, DEL and GC consistent when the ranges change between calls', async () => {
    const r1 = conf(runtime([[{ subnet: '10.77.0.0/24' }]]));
    const r2 = conf(runtime([[{ subnet: '10.88.0.0/24' }]]));
    const a = ok(await world.call('ADD', r1, { containerId: 'a' }), 'ADD a in R1');
    const b = ok(await world.call('ADD', r2, { containerId: 'b' }), 'ADD b in R2');
    assert.deepEqual([addresses(a), addresses(b)], [['10.77.0.2/24'], ['10.88.0.2/24']]);
    // A requested address must be in today's ranges.
    const asked = { ...r2, runtimeConfig: { ...(r2.runtimeConfig as object), ips: ['10.77.0.9/24'] } };
    fails(await world.call('ADD', asked, { containerId: 'x' }), 7, 'ADD asking for an address of the old ranges');
    // CHECK and DEL of `a` go by its reservation, whatever the ranges are now.
    ok(await world.call('CHECK', { ...r2, prevResult: a }, { containerId: 'a' }), 'CHECK a under R2');
    ok(await world.call('CHECK', { ...conf(), prevResult: a }, { containerId: 'a' }), 'CHECK a under the config ranges');
    ok(await world.call('DEL', conf(), { containerId: 'a' }), 'DEL a without runtime ranges');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), ['10.88.0.2']);
    // GC gets no runtimeConfig at all.
    ok(await world.call('GC', { ...conf(), 'cni.dev/valid-attachments': [{ containerID: 'b', ifname: ifnameOf('b') }] }), 'GC keeping b');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), ['10.88.0.2']);
    ok(await world.call('GC', { ...conf(), 'cni.dev/valid-attachments': [] }), 'GC keeping nothing');
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), []);
  });

  it('are checked like the config\'s ranges, and an error names runtimeConfig.ipRanges', async () => {
    const e = fails(await world.call('ADD', conf(runtime([[{ subnet: '10.77.0.1/24' }]]))), 7, 'ADD with host bits set');
    assert.match(`${e.msg} ${e.details}`, /runtimeConfig\.ipRanges\[0\]\[0\]\.subnet/);
    assert.deepEqual(reserved(world.store(DATA, 'unitnet')), []);
  });
});

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
  /** A record of Pier's for an attachment whose IPAM was delegated (and masqueraded). */
  const saveDelegated = () => {
    const rec = world.store(DATA, 'unitnet');
    rec.save({
      containerID: 'gone', ifname: 'eth0', network: 'unitnet', ips: [], hostVeth: 'veth0badc0de', portMappings: [], ipMasq: true,
      bridge: 'unitbr0', bootId: 'test-boot', createdAt: new Date(0).toISOString(), extra: { ips: ['10.124.9.7/24'] },
    });
    return rec;
  };

  it('carries on past a failed step and reports every error', async () => {
    // A delegated IPAM that is not in CNI_PATH.
    const c = conf({ ipMasq: true, dataDir: DATA, ipam: { type: 'missing-ipam' } });
    const rec = saveDelegated();
    const e = fails(await world.call('GC', { ...c, 'cni.dev/valid-attachments': [] }), 7, 'GC');
    assert.match(e.msg, /missing-ipam/);
    // The steps around the failed delegate still ran.
    assert.equal(rec.records.size, 0, "Pier's own record was released");
    assert.ok(world.natCalls.some((x) => x.op === 'gc'), 'NAT GC ran');
  });

  it('releases nothing when the NAT entries could not be removed: a record outlives its NAT entries', async () => {
    const c = conf({ ipMasq: true, dataDir: DATA, ipam: { type: 'missing-ipam' } });
    const rec = saveDelegated();
    world.natGcError = new Error('nft exploded');
    const r = await world.call('GC', { ...c, 'cni.dev/valid-attachments': [] });
    assert.notEqual(r.code, 0);
    assert.match(r.reply.msg, /nft exploded/);
    assert.doesNotMatch(r.reply.msg, /missing-ipam/, 'the delegate was asked to release addresses the DNAT still points at');
    assert.equal(rec.records.size, 1, 'the record went before its NAT entries');
  });
});

describe('DEL and the NAT entries', () => {
  const natConf = () => conf({ ipMasq: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] } });
  const dels = () => world.natCalls.filter((x) => x.op === 'del').length;

  it("containerd's second DEL, with nothing left, does not ask the NAT driver", async () => {
    ok(await world.call('ADD', natConf()), 'ADD');
    ok(await world.call('DEL', natConf()), 'first DEL');
    assert.equal(dels(), 1);
    ok(await world.call('DEL', natConf(), { env: { CNI_NETNS: '' } }), 'second DEL');
    ok(await world.call('DEL', natConf(), { containerId: 'never-added', env: { CNI_NETNS: '' } }), 'DEL of a key never added');
    assert.equal(dels(), 1, 'a DEL with nothing recorded looked for NAT entries');
  });

  it('a store left mid-change proves nothing: DEL looks for NAT entries by key', async () => {
    ok(await world.call('ADD', natConf()), 'ADD');
    const store = world.store(DATA, 'unitnet');
    store.records.clear();
    store.interrupted = true;
    ok(await world.call('DEL', natConf(), { env: { CNI_NETNS: '' } }), 'DEL');
    assert.equal(dels(), 1);
    assert.deepEqual(reserved(store), [], 'repair released the address');
  });

  it('a DEL whose NAT step fails keeps the record and the reservation for the retry', async () => {
    ok(await world.call('ADD', natConf()), 'ADD');
    const store = world.store(DATA, 'unitnet');
    world.natDelError = new Error('nft refused');
    const r = await world.call('DEL', natConf());
    assert.notEqual(r.code, 0);
    assert.match(r.reply.msg, /nft refused/);
    assert.equal(store.records.size, 1);
    assert.deepEqual(reserved(store), ['10.124.9.2']);
    world.natDelError = undefined;
    ok(await world.call('DEL', natConf(), { env: { CNI_NETNS: '' } }), 'retried DEL');
    assert.equal(store.records.size, 0);
    assert.deepEqual(reserved(store), []);
    assert.equal(dels(), 2, 'the retry removed the NAT entries');
  });
});

describe('runtimeConfig.dns', () => {
  const dns = { capabilities: { dns: true }, runtimeConfig: { dns: { Servers: ['10.96.0.10'], Searches: ['svc.cluster.local'], Options: ['ndots:5'] } } };
  const want = { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'] };

  it('is the result\'s dns, before the config\'s dns and the IPAM\'s resolvConf', async () => {
    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 198.51.100.53\nsearch example.org\n');
    const res = ok(await world.call('ADD', conf({ ...dns, dns: { nameservers: ['10.0.0.53'] } }, { resolvConf: resolv })), 'ADD');
    assert.deepEqual(res.dns, want);
    const ipamOnly = ok(await world.call('ADD', conf(dns, { resolvConf: resolv }), { mode: 'pier-ipam', containerId: 'c2' }), 'pier-ipam ADD');
    assert.deepEqual(ipamOnly.dns, want);
    // Without it, the config's dns, then the IPAM's.
    assert.deepEqual(ok(await world.call('ADD', conf({ dns: { nameservers: ['10.0.0.53'] } }, { resolvConf: resolv }), { containerId: 'c3' }), 'ADD').dns, { nameservers: ['10.0.0.53'] });
    assert.deepEqual(ok(await world.call('ADD', conf({}, { resolvConf: resolv }), { containerId: 'c4' }), 'ADD').dns, { nameservers: ['198.51.100.53'], search: ['example.org'] });
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

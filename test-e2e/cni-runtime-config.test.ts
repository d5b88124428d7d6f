// What a runtime passes besides the conflist entry, and how Go would have decoded it, reaching
// the kernel through dist/pier: runtimeConfig.ipRanges (the kubelet's podCIDR through
// containerd) replacing the config's ranges, also when they change between calls;
// runtimeConfig.dns in the result; keys in any case at any depth.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, removeFromDefaultStore, TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';
import { ipJson } from './helpers.ts';

const worlds = new Worlds();

const newWorld = (): TestWorld => worlds.make();

before(() => ensureBuilt());
after(() => worlds.cleanupAll());

function podAddresses(pod: string): string[] {
  const l = ipJson(pod, 'addr', 'show').find((x: any) => x.ifname === 'eth0');
  return (l?.addr_info ?? []).filter((a: any) => a.scope === 'global').map((a: any) => `${a.local}/${a.prefixlen}`);
}

function bridgeAddresses(w: TestWorld): string[] {
  const l = ipJson(w.host, 'addr', 'show').find((x: any) => x.ifname === `${w.prefix}br`);
  return (l?.addr_info ?? []).filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`).sort();
}

function reservations(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n)).sort();
}

function hostVeths(w: TestWorld): string[] {
  return ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname).sort();
}

function records(w: TestWorld, dataDir = w.dataDir): string[] {
  const r = w.exec(PIER, ['ls', '--json', '--data-dir', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).map((a: any) => a.containerID).sort();
}

const withRanges = (conf: Record<string, unknown>, ipRanges: unknown) => ({
  ...conf,
  capabilities: { ipRanges: true },
  runtimeConfig: { ipRanges },
});

describe('runtimeConfig.ipRanges', () => {
  it('replace ipam.ranges: the pod, the bridge and the routes use the runtime\'s range', () => {
    const w = newWorld();
    const base = w.conf('1.0.0', { subnet: '10.124.9.0/24' });
    const pod = w.addPod();
    const res = ok(w.call({ command: 'ADD', containerId: 'rr', netns: w.netnsPath(pod), ifname: 'eth0' }, withRanges(base, [[{ subnet: '10.77.0.0/24' }]])), 'ADD');
    assert.deepEqual(res.ips.map((i: any) => [i.address, i.gateway]), [['10.77.0.2/24', '10.77.0.1']]);
    assert.deepEqual(podAddresses(pod), ['10.77.0.2/24']);
    assert.deepEqual(bridgeAddresses(w), ['10.77.0.1/24']);
    assert.equal(ipJson(pod, 'route', 'show', 'default')[0]?.gateway, '10.77.0.1');
    assert.deepEqual(reservations(join(w.dataDir, base.name)), ['10.77.0.2']);
    ok(w.call({ command: 'DEL', containerId: 'rr', netns: w.netnsPath(pod), ifname: 'eth0' }, withRanges(base, [[{ subnet: '10.77.0.0/24' }]])), 'DEL');
    assert.deepEqual(reservations(join(w.dataDir, base.name)), []);
  });

  it('containerd\'s flat dual-stack list gives one address per family', () => {
    const w = newWorld();
    const base = w.conf('1.0.0');
    const pod = w.addPod();
    const flat = [{ Subnet: '10.78.0.0/24' }, { Subnet: 'fd00:78::/64' }];
    const res = ok(w.call({ command: 'ADD', containerId: 'flat', netns: w.netnsPath(pod), ifname: 'eth0' }, withRanges(base, flat)), 'ADD');
    assert.deepEqual(res.ips.map((i: any) => i.address), ['10.78.0.2/24', 'fd00:78::2/64']);
    assert.deepEqual(podAddresses(pod), ['10.78.0.2/24', 'fd00:78::2/64']);
    ok(w.call({ command: 'DEL', containerId: 'flat', netns: '', ifname: 'eth0' }, base), 'DEL without netns or runtimeConfig');
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(reservations(join(w.dataDir, base.name)), []);
  });

  it('ADD, CHECK, DEL and GC stay consistent when the ranges change between calls', () => {
    const w = newWorld();
    const base = w.conf('1.1.0', { extra: { ipMasq: true } });
    const [pa, pb] = [w.addPod(), w.addPod()];
    const r1 = withRanges(base, [[{ subnet: '10.77.0.0/24' }]]);
    const r2 = withRanges(base, [[{ subnet: '10.88.0.0/24' }]]);
    const a = ok(w.call({ command: 'ADD', containerId: 'a', netns: w.netnsPath(pa), ifname: 'eth0' }, r1), 'ADD a');
    const b = ok(w.call({ command: 'ADD', containerId: 'b', netns: w.netnsPath(pb), ifname: 'eth0' }, r2), 'ADD b');
    assert.deepEqual([a.ips[0].address, b.ips[0].address], ['10.77.0.2/24', '10.88.0.2/24']);
    assert.deepEqual(podAddresses(pb), ['10.88.0.2/24']);

    ok(w.call({ command: 'CHECK', containerId: 'a', netns: w.netnsPath(pa), ifname: 'eth0' }, { ...r2, prevResult: a }), 'CHECK a under new ranges');
    ok(w.call({ command: 'CHECK', containerId: 'b', netns: w.netnsPath(pb), ifname: 'eth0' }, { ...base, prevResult: b }), 'CHECK b without runtime ranges');
    ok(w.call({ command: 'DEL', containerId: 'a', netns: w.netnsPath(pa), ifname: 'eth0' }, { ...r2, prevResult: a }), 'DEL a under new ranges');
    assert.deepEqual(reservations(join(w.dataDir, base.name)), ['10.88.0.2']);
    assert.deepEqual(podAddresses(pa), []);
    assert.deepEqual(records(w), ['b']);

    ok(w.call({ command: 'GC' }, { ...base, 'cni.dev/valid-attachments': [{ containerID: 'b', ifname: 'eth0' }] }), 'GC keeping b');
    assert.deepEqual(podAddresses(pb), ['10.88.0.2/24']);
    ok(w.call({ command: 'GC' }, { ...base, 'cni.dev/valid-attachments': [] }), 'GC keeping nothing');
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(reservations(join(w.dataDir, base.name)), []);
    assert.deepEqual(records(w), []);
  });

  it('a bad runtime range is code 7 naming it, and changes nothing', () => {
    const w = newWorld();
    const base = w.conf('1.0.0');
    const pod = w.addPod();
    const e = fails(w.call({ command: 'ADD', containerId: 'bad', netns: w.netnsPath(pod), ifname: 'eth0' }, withRanges(base, [[{ subnet: '10.77.0.0/31' }]])), 7, 'ADD');
    assert.match(`${e.msg} ${e.details}`, /runtimeConfig\.ipRanges\[0\]\[0\]\.subnet/);
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(podAddresses(pod), []);
  });
});

describe('runtimeConfig.dns', () => {
  it('is the result\'s dns', () => {
    const w = newWorld();
    const conf = {
      ...w.conf('1.0.0'),
      dns: { nameservers: ['10.0.0.53'] },
      capabilities: { dns: true },
      runtimeConfig: { dns: { Servers: ['10.96.0.10'], Searches: ['default.svc.cluster.local'], Options: ['ndots:5'] } },
    };
    const pod = w.addPod();
    const res = ok(w.call({ command: 'ADD', containerId: 'dns', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.deepEqual(res.dns, { nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local'], options: ['ndots:5'] });
    ok(w.call({ command: 'DEL', containerId: 'dns', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'DEL');
  });
});

describe('keys in any case, at any depth', () => {
  it('IPAM, Ranges, DataDir, NftTable, DNS.Nameservers reach the store, the pod and nft', () => {
    const w = newWorld();
    const table = `pier_test_${w.prefix}`;
    const conf = {
      CNIVersion: '1.0.0',
      Name: `${w.prefix}net`,
      Type: 'pier',
      Bridge: `${w.prefix}br`,
      IsGateway: true,
      IPMasq: true,
      NftTable: table,
      DNS: { Nameservers: ['10.0.0.53'] },
      IPAM: { Type: 'pier-ipam', Ranges: [[{ Subnet: '10.79.0.0/24', RangeStart: '10.79.0.50' }]], Routes: [{ Dst: '0.0.0.0/0' }], DataDir: w.dataDir },
    };
    const pod = w.addPod();
    const res = ok(w.call({ command: 'ADD', containerId: 'caps', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.deepEqual(podAddresses(pod), ['10.79.0.50/24']);
    assert.deepEqual(res.dns, { nameservers: ['10.0.0.53'] });
    assert.deepEqual(reservations(join(w.dataDir, conf.Name)), ['10.79.0.50']);
    const nft = w.exec('nft', ['-j', 'list', 'table', 'inet', table]);
    assert.equal(nft.status, 0, `table ${table} exists: ${nft.stderr}`);
    assert.match(nft.stdout, /"comment": "caps\/eth0"/);
    ok(w.call({ command: 'DEL', containerId: 'caps', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'DEL');
    assert.doesNotMatch(w.exec('nft', ['-j', 'list', 'table', 'inet', table]).stdout, /caps\/eth0/);
  });

  it('a top-level DataDir holds the records of a network without Pier\'s IPAM', () => {
    const w = newWorld();
    const { ipam: _, ...base } = w.conf('1.0.0');
    // Where the records went before the fix: this machine's default store. Remove it afterwards.
    w.cleanup.add(() => removeFromDefaultStore(base.name));
    const conf = { ...base, DataDir: w.dataDir };
    const pod = w.addPod();
    ok(w.call({ command: 'ADD', containerId: 'own', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.deepEqual(records(w), ['own']);
    assert.equal(existsSync(join('/var/lib/pier/networks', base.name)), false, 'nothing in the default data dir');
    ok(w.call({ command: 'DEL', containerId: 'own', netns: '', ifname: 'eth0' }, conf), 'DEL');
    assert.deepEqual(records(w), []);
    assert.deepEqual(hostVeths(w), []);
  });
});

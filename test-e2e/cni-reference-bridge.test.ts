// Pier next to the reference plugins (Debian's containernetworking-plugins in /usr/lib/cni):
// the reference `bridge` delegating to `pier-ipam` (found in CNI_PATH, which holds dist/), and
// Pier delegating to the reference `host-local`. Both run in a TestWorld's host netns with
// stores inside the world's data dir, removed in after().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, REFERENCE_PLUGINS, TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';
import { elementOwners } from './nft-state.ts';
import { ipJson } from './helpers.ts';

const BRIDGE = join(REFERENCE_PLUGINS, 'bridge');
const HOST_LOCAL = join(REFERENCE_PLUGINS, 'host-local');

const worlds = new Worlds();
const newWorld = (): TestWorld => worlds.make();

before(() => {
  ensureBuilt();
  if (!existsSync(BRIDGE) || !existsSync(HOST_LOCAL)) {
    const r = spawnSync('apt-get', ['install', '-y', 'containernetworking-plugins'], { stdio: 'inherit' });
    assert.equal(r.status, 0, 'apt-get install containernetworking-plugins');
  }
  assert.ok(existsSync(join(PIER, '..', 'pier-ipam')), 'dist/pier-ipam exists');
});
after(() => worlds.cleanupAll());

/** IP files (reservations) in a host-local style store directory. */
function reservations(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n)).sort();
}

function hostVeths(w: TestWorld): string[] {
  return ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname);
}

function podAddresses(pod: string, ifname = 'eth0'): string[] {
  const l = ipJson(pod, 'addr', 'show').find((x: any) => x.ifname === ifname);
  return (l?.addr_info ?? []).filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`);
}

/** Comments (`cid/ifname`) of the elements in the world's nft table. */
function nftOwners(w: TestWorld): string[] {
  return elementOwners(w.host, `pier_test_${w.prefix}`);
}

function pierLs(w: TestWorld): any[] {
  const r = w.exec(PIER, ['ls', '--json', '--data-dir', w.dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('reference bridge with "ipam": {"type": "pier-ipam"}', () => {
  for (const v of ['0.4.0', '1.0.0']) {
    it(`${v}: ADD gets an address from pier-ipam, CHECK passes, DEL releases it`, () => {
      const w = newWorld();
      const pod = w.addPod();
      const netns = w.netnsPath(pod);
      const store = join(w.dataDir, `${w.prefix}net`);
      const conf = { ...w.conf(v), type: 'bridge' };
      delete (conf as Record<string, unknown>).nftTable;
      const id = { containerId: `ref-${v.replaceAll('.', '')}`, ifname: 'eth0', plugin: BRIDGE };

      const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'reference bridge ADD');
      const address = res.ips[0].address;
      assert.match(address, /^10\.213\.0\.\d+\/24$/);
      assert.equal(res.ips[0].gateway, '10.213.0.1');
      assert.deepEqual(podAddresses(pod), [address]);
      assert.deepEqual(reservations(store), [address.split('/')[0]], 'pier-ipam reserved it');
      const ls = pierLs(w);
      assert.equal(ls.length, 1);
      assert.equal(ls[0].containerID, id.containerId);
      assert.deepEqual(ls[0].ips, [address]);

      ok(w.call({ command: 'CHECK', ...id, netns }, { ...conf, prevResult: res }), 'reference bridge CHECK');

      // A second pod gets the next address, and they reach each other over the bridge.
      const pod2 = w.addPod();
      const res2 = ok(w.call({ command: 'ADD', ...id, containerId: `${id.containerId}-b`, netns: w.netnsPath(pod2) }, conf), 'second ADD');
      assert.notEqual(res2.ips[0].address, address);
      assert.equal(spawnSync('ip', ['netns', 'exec', pod, 'ping', '-c', '1', '-W', '2', res2.ips[0].address.split('/')[0]]).status, 0);

      ok(w.call({ command: 'DEL', ...id, netns }, { ...conf, prevResult: res }), 'reference bridge DEL');
      assert.deepEqual(reservations(store), [res2.ips[0].address.split('/')[0]], 'the first address is released');
      ok(w.call({ command: 'DEL', ...id, netns }, conf), 'repeated DEL');
      // containerd's second DEL: no netns, no prevResult.
      ok(w.call({ command: 'DEL', ...id, containerId: `${id.containerId}-b`, netns: '' }, conf), 'DEL without netns');
      assert.deepEqual(reservations(store), []);
      assert.deepEqual(readdirSync(join(store, 'attachments')), []);
      assert.deepEqual(pierLs(w), []);
    });
  }
});

describe('pier with a delegated "ipam": {"type": "host-local"}', () => {
  it('ADD, CHECK, DEL through host-local with its own dataDir', () => {
    const w = newWorld();
    const pod = w.addPod();
    const netns = w.netnsPath(pod);
    const hlDir = join(w.dataDir, 'host-local');
    // Top-level dataDir: where Pier keeps its own records when another plugin does IPAM.
    const conf = w.conf('1.0.0', { ipam: { type: 'host-local', dataDir: hlDir }, extra: { dataDir: w.dataDir } });
    const hlStore = join(hlDir, conf.name);
    const id = { containerId: 'delegated', ifname: 'eth0' };

    const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'ADD');
    const address = res.ips[0].address;
    assert.match(address, /^10\.213\.0\.\d+\/24$/);
    assert.equal(res.interfaces.length, 3);
    assert.equal(res.ips[0].interface, 2);
    assert.deepEqual(podAddresses(pod), [address]);
    assert.deepEqual(reservations(hlStore), [address.split('/')[0]], 'host-local reserved it in its dataDir');
    const ls = pierLs(w);
    assert.equal(ls.length, 1, 'Pier recorded the attachment');
    assert.equal(ls[0].hostVeth, res.interfaces[1].name);
    assert.deepEqual(ls[0].ips, [address]);

    ok(w.call({ command: 'CHECK', ...id, netns }, { ...conf, prevResult: res }), 'CHECK');

    ok(w.call({ command: 'DEL', ...id, netns }, { ...conf, prevResult: res }), 'DEL');
    assert.deepEqual(reservations(hlStore), [], 'host-local released it');
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(pierLs(w), []);
    ok(w.call({ command: 'DEL', ...id, netns: '' }, conf), 'DEL without netns');
  });

  it('a failed ADD gives the address back to host-local; DEL removes the hostPort', () => {
    const w = newWorld();
    const [p1, p2] = [w.addPod(), w.addPod()];
    const hlDir = join(w.dataDir, 'host-local');
    const conf = w.conf('1.0.0', {
      ipam: { type: 'host-local', dataDir: hlDir },
      extra: { dataDir: w.dataDir, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18088, containerPort: 80, protocol: 'tcp' }] } },
    });
    const hlStore = join(hlDir, conf.name);
    const first = ok(w.call({ command: 'ADD', containerId: 'hl-1', netns: w.netnsPath(p1), ifname: 'eth0' }, conf), 'ADD');
    // Same hostPort: Pier refuses it after host-local has handed out an address.
    const r = w.call({ command: 'ADD', containerId: 'hl-2', netns: w.netnsPath(p2), ifname: 'eth0' }, conf);
    // 101: the hostPort is taken (by hl-1); any other failure would not be this test's point.
    const e = fails(r, 101, 'second ADD with the same hostPort');
    assert.match(e.msg, /18088\/tcp.*hl-1\/eth0/);
    assert.deepEqual(reservations(hlStore), [first.ips[0].address.split('/')[0]], 'host-local holds only the first address');
    assert.deepEqual(hostVeths(w), [first.interfaces[1].name]);
    assert.deepEqual(pierLs(w).map((a) => a.containerID), ['hl-1']);
    assert.deepEqual(nftOwners(w), ['hl-1/eth0'], 'no nft element of the failed ADD');
    ok(w.call({ command: 'DEL', containerId: 'hl-1', netns: w.netnsPath(p1), ifname: 'eth0' }, { ...conf, prevResult: first }), 'DEL');
    assert.deepEqual(reservations(hlStore), []);
    assert.deepEqual(pierLs(w), []);
    assert.deepEqual(nftOwners(w), [], 'DEL removed the hostPort of a delegated-IPAM attachment');
    assert.deepEqual(hostVeths(w), []);
  });
});

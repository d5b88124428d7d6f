// The CNI lifecycle of dist/pier run as a runtime runs it, for every spec version: ADD, CHECK,
// DEL (repeated, and containerd's second DEL without netns), checked against the kernel with
// `ip -j`, against the store on disk and `pier ls`; then the bridge options, dual stack with
// traffic, static IP/MAC, masquerade in nft, STATUS and GC. Each world (host netns, pods, data
// dir, bridge, nft table) is unique to this file and removed in after().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';
import { tableElements } from './nft-state.ts';
import { inNs, ipJson, ping } from './helpers.ts';

const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const SUBNET = '10.213.0.0/24';
const GW = '10.213.0.1';

const worlds = new Worlds();
const newWorld = (): TestWorld => worlds.make();

before(() => ensureBuilt());
after(() => worlds.cleanupAll());

const atLeast = (v: string, min: string) => {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] > b[i];
  return true;
};

/** The links enslaved to the world's bridge (none when the bridge does not exist). */
function bridgePorts(w: TestWorld, bridge = `${w.prefix}br`): any[] {
  if (!ipJson(w.host, 'link', 'show').some((l: any) => l.ifname === bridge)) return [];
  return ipJson(w.host, 'link', 'show', 'master', bridge);
}

function linkIn(ns: string, name: string): any | undefined {
  return ipJson(ns, '-d', 'addr', 'show').find((l: any) => l.ifname === name);
}

/** The network's store directory: reservation files and attachment records. */
function storeState(w: TestWorld, network = `${w.prefix}net`) {
  const dir = join(w.dataDir, network);
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const attachments = existsSync(join(dir, 'attachments')) ? readdirSync(join(dir, 'attachments')) : [];
  const other = names.filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n));
  return { names, reservations: other, attachments };
}

function pierLs(w: TestWorld): any[] {
  const r = w.exec(PIER, ['ls', '--json', '--data-dir', w.dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Nothing of any attachment is left: no port on the bridge, no reservation, no record. */
function assertClean(w: TestWorld, network = `${w.prefix}net`) {
  assert.deepEqual(bridgePorts(w).map((l) => l.ifname), [], 'no veth left on the bridge');
  assert.deepEqual(ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname), [], 'no veth left in the host netns');
  const s = storeState(w, network);
  assert.deepEqual(s.reservations, [], `only lock, last_reserved_ip.* and attachments/ remain (have ${s.names.join(', ')})`);
  assert.ok(s.names.includes('attachments'));
  assert.deepEqual(s.attachments, [], 'attachments/ is empty');
  assert.deepEqual(pierLs(w), []);
}

/** The pod's kernel state after ADD: bridge, veth pair and master, address, default route. */
function assertWired(w: TestWorld, pod: string, ifname: string, address: string, hostVeth: string) {
  const br = linkIn(w.host, `${w.prefix}br`);
  assert.ok(br, 'bridge exists');
  assert.equal(br.linkinfo?.info_kind, 'bridge');
  assert.ok(br.flags.includes('UP'), 'bridge is up');
  assert.ok(br.addr_info.some((a: any) => a.local === GW && a.prefixlen === 24), 'gateway address on the bridge');
  const hv = linkIn(w.host, hostVeth);
  assert.ok(hv, `host veth ${hostVeth} exists`);
  assert.equal(hv.linkinfo?.info_kind, 'veth');
  assert.equal(hv.master, `${w.prefix}br`);
  assert.ok(hv.flags.includes('UP'));
  const pl = linkIn(pod, ifname);
  assert.ok(pl, `${ifname} exists in the pod`);
  assert.equal(pl.linkinfo?.info_kind, 'veth');
  assert.equal(pl.link_index, hv.ifindex, 'pod end is the peer of the host veth');
  assert.equal(hv.link_index, pl.ifindex, 'host veth is the peer of the pod end');
  assert.ok(pl.flags.includes('UP'));
  const [ip, prefix] = address.split('/');
  assert.ok(pl.addr_info.some((a: any) => a.local === ip && a.prefixlen === Number(prefix)), `${address} on ${ifname}`);
  const def = ipJson(pod, 'route', 'show', 'default');
  assert.equal(def.length, 1);
  assert.equal(def[0].gateway, GW);
  assert.equal(def[0].dev, ifname);
}

/** Checks the result's shape for its version; returns the pod address. */
function assertResultShape(v: string, res: any, w: TestWorld, podPath: string): string {
  assert.equal(res.cniVersion, v);
  if (!atLeast(v, '0.3.0')) {
    assert.deepEqual(Object.keys(res).sort(), ['cniVersion', 'dns', 'ip4']);
    assert.match(res.ip4.ip, /^10\.213\.0\.\d+\/24$/);
    assert.equal(res.ip4.gateway, GW);
    assert.deepEqual(res.ip4.routes, [{ dst: '0.0.0.0/0' }]);
    return res.ip4.ip;
  }
  assert.deepEqual(Object.keys(res).sort(), ['cniVersion', 'dns', 'interfaces', 'ips', 'routes']);
  assert.equal(res.interfaces.length, 3);
  assert.equal(res.interfaces[0].name, `${w.prefix}br`);
  assert.equal(res.interfaces[0].sandbox, undefined);
  assert.match(res.interfaces[1].name, /^veth[0-9a-f]{8}$/);
  assert.equal(res.interfaces[1].sandbox, undefined);
  assert.equal(res.interfaces[2].name, 'eth0');
  assert.equal(res.interfaces[2].sandbox, podPath);
  for (const i of res.interfaces) assert.match(i.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  assert.equal(res.ips.length, 1);
  const ip = res.ips[0];
  const want = atLeast(v, '1.0.0') ? ['address', 'gateway', 'interface'] : ['address', 'gateway', 'interface', 'version'];
  assert.deepEqual(Object.keys(ip).sort(), want);
  if (!atLeast(v, '1.0.0')) assert.equal(ip.version, '4');
  assert.equal(ip.interface, 2);
  assert.equal(ip.gateway, GW);
  assert.match(ip.address, /^10\.213\.0\.\d+\/24$/);
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0' }]);
  return ip.address;
}

describe('lifecycle for every spec version', () => {
  const w = newWorld();

  for (const v of VERSIONS) {
    it(`${v}: ADD, CHECK, DEL, DEL again, DEL without netns leave nothing`, () => {
      const pod = w.addPod();
      const netns = w.netnsPath(pod);
      const id = { containerId: `lc-${v.replaceAll('.', '')}`, ifname: 'eth0' };
      const conf = w.conf(v);

      const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'ADD');
      const address = assertResultShape(v, res, w, netns);
      const ls = pierLs(w);
      assert.equal(ls.length, 1);
      assert.equal(ls[0].containerID, id.containerId);
      assert.equal(ls[0].ifname, 'eth0');
      assert.deepEqual(ls[0].ips, [address]);
      assert.equal(ls[0].netns, netns);
      const hostVeth: string = ls[0].hostVeth;
      if (res.interfaces) assert.equal(hostVeth, res.interfaces[1].name);
      assertWired(w, pod, 'eth0', address, hostVeth);
      assert.deepEqual(storeState(w).reservations, [address.split('/')[0]]);

      const withPrev = { ...conf, prevResult: res };
      if (atLeast(v, '0.4.0')) {
        ok(w.call({ command: 'CHECK', ...id, netns }, withPrev), 'CHECK');
        // Remove the pod's address by hand: CHECK must notice.
        assert.equal(inNs(pod, 'ip', ['addr', 'del', address, 'dev', 'eth0']).status, 0);
        fails(w.call({ command: 'CHECK', ...id, netns }, withPrev), 103, 'CHECK without the address');
        // Put it back (the default route went with it): CHECK passes again.
        assert.equal(inNs(pod, 'ip', ['addr', 'add', address, 'dev', 'eth0']).status, 0);
        assert.equal(inNs(pod, 'ip', ['route', 'add', 'default', 'via', GW, 'dev', 'eth0']).status, 0);
        ok(w.call({ command: 'CHECK', ...id, netns }, withPrev), 'CHECK after repair');
      } else {
        fails(w.call({ command: 'CHECK', ...id, netns }, conf), 1, `CHECK at ${v}`);
      }
      if (!atLeast(v, '1.1.0')) {
        fails(w.call({ command: 'STATUS' }, conf), 1, `STATUS at ${v}`);
        fails(w.call({ command: 'GC' }, conf), 1, `GC at ${v}`);
      }

      const delConf = atLeast(v, '0.4.0') ? withPrev : conf;
      ok(w.call({ command: 'DEL', ...id, netns }, delConf), 'DEL');
      assert.equal(linkIn(pod, 'eth0'), undefined, 'pod eth0 is gone');
      assertClean(w);
      ok(w.call({ command: 'DEL', ...id, netns }, delConf), 'repeated DEL');
      ok(w.call({ command: 'DEL', ...id, netns: '' }, conf), 'DEL with CNI_NETNS=""');
      assertClean(w);
    });
  }

  it('CHECK fails with 103 when the host veth was deleted by hand; DEL still releases', () => {
    const pod = w.addPod();
    const netns = w.netnsPath(pod);
    const id = { containerId: 'lc-vethgone', ifname: 'eth0' };
    const conf = w.conf('1.0.0');
    const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'ADD');
    const withPrev = { ...conf, prevResult: res };
    ok(w.call({ command: 'CHECK', ...id, netns }, withPrev), 'CHECK');
    assert.equal(w.exec('ip', ['link', 'del', res.interfaces[1].name]).status, 0);
    const e = fails(w.call({ command: 'CHECK', ...id, netns }, withPrev), 103, 'CHECK without the veth');
    assert.match(e.msg, /missing|veth|eth0/);
    ok(w.call({ command: 'DEL', ...id, netns }, withPrev), 'DEL');
    assertClean(w);
  });

  it('containerd\'s DEL without netns and prevResult, coming first, removes the veth and the reservation', () => {
    const pod = w.addPod();
    const netns = w.netnsPath(pod);
    const id = { containerId: 'lc-nonetns', ifname: 'eth0' };
    const conf = w.conf('1.0.0');
    const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'ADD');
    assert.ok(linkIn(w.host, res.interfaces[1].name));
    ok(w.call({ command: 'DEL', ...id, netns: '' }, conf), 'DEL with CNI_NETNS=""');
    assert.equal(linkIn(pod, 'eth0'), undefined, 'the pod end went with the host veth');
    assertClean(w);
  });

  it('DEL after the pod netns is gone releases everything', () => {
    const pod = w.addPod();
    const netns = w.netnsPath(pod);
    const id = { containerId: 'lc-netnsgone', ifname: 'eth0' };
    const conf = w.conf('0.4.0');
    const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'ADD');
    assert.equal(spawnSync('ip', ['netns', 'del', pod]).status, 0);
    ok(w.call({ command: 'DEL', ...id, netns }, { ...conf, prevResult: res }), 'DEL with a vanished netns');
    assertClean(w);
  });
});


/** Every nft set/map element of the world's table that belongs to `comment` (`cid/ifname`). */
function nftElements(w: TestWorld, comment: string): Array<{ set: string; val: unknown }> {
  return tableElements(w.host, `pier_test_${w.prefix}`, comment).map((e) => ({ set: e.set, val: e.key }));
}

describe('bridge, IPAM and NAT options', () => {
  it('dual stack: one address per range set, pods ping each other over IPv4 and IPv6', () => {
    const w = newWorld();
    const conf = w.conf('1.1.0', { subnet6: 'fd00:213::/64' });
    const pods = [w.addPod(), w.addPod()];
    const res = pods.map((pod, n) => ok(w.call({ command: 'ADD', containerId: `ds-${n}`, netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD'));
    for (const r of res) {
      assert.equal(r.ips.length, 2);
      assert.match(r.ips[0].address, /^10\.213\.0\.\d+\/24$/);
      assert.equal(r.ips[0].gateway, GW);
      assert.match(r.ips[1].address, /^fd00:213::[0-9a-f]+\/64$/);
      assert.equal(r.ips[1].gateway, 'fd00:213::1');
      for (const ip of r.ips) assert.equal(ip.interface, 2);
    }
    const br = linkIn(w.host, `${w.prefix}br`);
    assert.ok(br.addr_info.some((a: any) => a.local === 'fd00:213::1' && a.prefixlen === 64), 'IPv6 gateway on the bridge');
    for (const [n, pod] of pods.entries()) {
      const l = linkIn(pod, 'eth0');
      for (const ip of res[n].ips) {
        const [a, p] = ip.address.split('/');
        assert.ok(l.addr_info.some((x: any) => x.local === a && x.prefixlen === Number(p)), `${ip.address} in pod ${n}`);
      }
    }
    for (const family of [0, 1]) {
      const dst = res[1].ips[family].address.split('/')[0];
      assert.ok(ping(pods[0], dst), `pod 0 reaches pod 1 at ${dst}`);
      const back = res[0].ips[family].address.split('/')[0];
      assert.ok(ping(pods[1], back), `pod 1 reaches pod 0 at ${back}`);
    }
    assert.equal(storeState(w).reservations.length, 4);
    for (const [n, pod] of pods.entries()) {
      ok(w.call({ command: 'DEL', containerId: `ds-${n}`, netns: w.netnsPath(pod), ifname: 'eth0' }, { ...conf, prevResult: res[n] }), 'DEL');
    }
    assertClean(w);
  });

  it('isDefaultGateway adds the default route via the gateway, with no IPAM routes', () => {
    const w = newWorld();
    const pod = w.addPod();
    const conf = w.conf('1.0.0', { extra: { isDefaultGateway: true }, ipam: { routes: [] } });
    const res = ok(w.call({ command: 'ADD', containerId: 'dg', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: GW }]);
    const def = ipJson(pod, 'route', 'show', 'default');
    assert.equal(def.length, 1);
    assert.equal(def[0].gateway, GW);
    assert.ok(linkIn(w.host, `${w.prefix}br`).addr_info.some((a: any) => a.local === GW), 'isDefaultGateway implies isGateway');
    assert.ok(ping(pod, GW), 'pod reaches its gateway');
    ok(w.call({ command: 'CHECK', containerId: 'dg', netns: w.netnsPath(pod), ifname: 'eth0' }, { ...conf, prevResult: res }), 'CHECK');
    ok(w.call({ command: 'DEL', containerId: 'dg', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'DEL');
    assertClean(w);
  });

  it('mtu, route mtu/advmss, hairpinMode, portIsolation and ipMasq reach the kernel and nft', () => {
    const w = newWorld();
    const pod = w.addPod();
    const conf = w.conf('1.1.0', {
      extra: { mtu: 1400, hairpinMode: true, portIsolation: true, ipMasq: true },
      ipam: { routes: [{ dst: '0.0.0.0/0' }, { dst: '10.99.0.0/16', mtu: 1300, advmss: 1260 }] },
    });
    const id = { containerId: 'opts', netns: w.netnsPath(pod), ifname: 'eth0' };
    const res = ok(w.call({ command: 'ADD', ...id }, conf), 'ADD');
    assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0' }, { dst: '10.99.0.0/16', mtu: 1300, advmss: 1260 }]);
    const hostVeth = res.interfaces[1].name;

    assert.equal(linkIn(pod, 'eth0').mtu, 1400);
    assert.equal(linkIn(w.host, hostVeth).mtu, 1400);
    assert.equal(linkIn(w.host, `${w.prefix}br`).mtu, 1400);

    const route = ipJson(pod, 'route', 'show', '10.99.0.0/16');
    assert.equal(route.length, 1);
    assert.equal(route[0].gateway, GW);
    assert.deepEqual(route[0].metrics, [{ mtu: 1300, advmss: 1260 }]);

    const port = ipJson(w.host, '-d', 'link', 'show', 'dev', hostVeth)[0].linkinfo.info_slave_data;
    assert.equal(port.hairpin, true);
    assert.equal(port.isolated, true);

    const podIp = res.ips[0].address.split('/')[0];
    const els = nftElements(w, 'opts/eth0');
    assert.ok(els.some((e) => /^podaddrs4_/.test(e.set) && e.val === podIp), `masquerade entry for ${podIp}: ${JSON.stringify(els)}`);
    ok(w.call({ command: 'CHECK', ...id }, { ...conf, prevResult: res }), 'CHECK');

    ok(w.call({ command: 'DEL', ...id }, { ...conf, prevResult: res }), 'DEL');
    assert.deepEqual(nftElements(w, 'opts/eth0'), [], 'masquerade entry removed');
    assertClean(w);
  });

  it('static IP from CNI_ARGS IP= and runtimeConfig ips, static MAC from CNI_ARGS MAC=', () => {
    const w = newWorld();
    const [p1, p2] = [w.addPod(), w.addPod()];
    const conf = w.conf('1.0.0');
    const mac = '02:42:0a:d5:00:4d';
    const a = { containerId: 'static-args', netns: w.netnsPath(p1), ifname: 'eth0', args: `IgnoreUnknown=1;IP=10.213.0.77;MAC=${mac}` };
    const r1 = ok(w.call({ command: 'ADD', ...a }, conf), 'ADD with IP= and MAC=');
    assert.equal(r1.ips[0].address, '10.213.0.77/24');
    assert.equal(r1.interfaces[2].mac, mac);
    const l1 = linkIn(p1, 'eth0');
    assert.equal(l1.address, mac);
    assert.ok(l1.addr_info.some((x: any) => x.local === '10.213.0.77'));

    const rc = { ...conf, capabilities: { ips: true }, runtimeConfig: { ips: ['10.213.0.88/24'] } };
    const b = { containerId: 'static-rc', netns: w.netnsPath(p2), ifname: 'eth0' };
    const r2 = ok(w.call({ command: 'ADD', ...b }, rc), 'ADD with runtimeConfig ips');
    assert.equal(r2.ips[0].address, '10.213.0.88/24');
    assert.ok(linkIn(p2, 'eth0').addr_info.some((x: any) => x.local === '10.213.0.88'));
    assert.deepEqual(storeState(w).reservations.sort(), ['10.213.0.77', '10.213.0.88']);
    assert.ok(ping(p1, '10.213.0.88'));

    ok(w.call({ command: 'DEL', ...a }, conf), 'DEL');
    ok(w.call({ command: 'DEL', ...b }, rc), 'DEL');
    assertClean(w);
  });

  it('STATUS exits 0 when there is room and answers 50 when the range is full', () => {
    const w = newWorld();
    const pod = w.addPod();
    // A /30 has one address to give: .1 is the gateway, .3 the broadcast.
    const conf = w.conf('1.1.0', { subnet: '10.213.9.0/30' });
    ok(w.call({ command: 'STATUS' }, conf), 'STATUS on an empty store');
    const id = { containerId: 'full', netns: w.netnsPath(pod), ifname: 'eth0' };
    const res = ok(w.call({ command: 'ADD', ...id }, conf), 'ADD');
    assert.equal(res.ips[0].address, '10.213.9.2/30');
    fails(w.call({ command: 'STATUS' }, conf), 50, 'STATUS on a full range');
    const next = w.addPod();
    const e = fails(w.call({ command: 'ADD', containerId: 'full2', netns: w.netnsPath(next), ifname: 'eth0' }, conf), 100, 'ADD into a full range');
    assert.match(e.msg, /10\.213\.9\.2/, 'the exhaustion error names the range');
    assert.equal(linkIn(next, 'eth0'), undefined);
    ok(w.call({ command: 'DEL', ...id }, conf), 'DEL');
    ok(w.call({ command: 'STATUS' }, conf), 'STATUS after DEL');
    assertClean(w);
  });

  it('GC releases the attachments not listed in cni.dev/valid-attachments, and refuses a GC with no list', () => {
    const w = newWorld();
    const conf = w.conf('1.1.0');
    const pods = [w.addPod(), w.addPod(), w.addPod()];
    const res = pods.map((pod, n) => ok(w.call({ command: 'ADD', containerId: `gc-${n}`, netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD'));
    const addr = (n: number) => res[n].ips[0].address.split('/')[0];
    const veth = (n: number) => res[n].interfaces[1].name;
    assert.equal(bridgePorts(w).length, 3);

    ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: 'gc-0', ifname: 'eth0' }, { containerID: 'gc-2', ifname: 'eth0' }] }), 'GC');
    assert.deepEqual(storeState(w).reservations.sort(), [addr(0), addr(2)].sort());
    assert.deepEqual(bridgePorts(w).map((l) => l.ifname).sort(), [veth(0), veth(2)].sort());
    assert.equal(linkIn(pods[1], 'eth0'), undefined, 'the collected pod lost its interface');
    assert.deepEqual(pierLs(w).map((r) => r.containerID).sort(), ['gc-0', 'gc-2']);

    // The older key libcni also sends.
    ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/attachments': [{ containerID: 'gc-2', ifname: 'eth0' }] }), 'GC with cni.dev/attachments');
    assert.deepEqual(storeState(w).reservations, [addr(2)]);

    // cnitool's GC, with no list: refused, not read as "nothing is valid".
    fails(w.call({ command: 'GC' }, conf), 7, 'GC with no list');
    assert.deepEqual(storeState(w).reservations, [addr(2)]);
    ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }), 'GC with an empty list');
    assertClean(w);
    // The runtime's DEL for a collected attachment still succeeds.
    ok(w.call({ command: 'DEL', containerId: 'gc-1', netns: w.netnsPath(pods[1]), ifname: 'eth0' }, conf), 'DEL after GC');
  });
});

// Pier's netlink layer against the real kernel, in throwaway namespaces, checked with `ip -j`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nl from '../src/netlink/index.ts';
import { IFA_F_NODAD } from '../src/netlink/constants.ts';
import { closeSync } from 'node:fs';
import { Cleanup, ipJson, ping, uniquePrefix } from './helpers.ts';

const p = uniquePrefix();
const cleanup = new Cleanup();
const HOST = `${p}-host`;
const PODA = `${p}-a`;
const PODB = `${p}-b`;
let hostPath: string;
let podA: string;
let podB: string;
let hs: nl.NetlinkSocket;

before(() => {
  for (const n of [HOST, PODA, PODB]) cleanup.add(() => nl.deleteNamedNetns(n));
  hostPath = nl.createNamedNetns(HOST);
  podA = nl.createNamedNetns(PODA);
  podB = nl.createNamedNetns(PODB);
  hs = nl.openNetnsSocket(hostPath);
  cleanup.add(() => hs.close());
});
after(() => cleanup.runAll());

describe('netns', () => {
  test('created namespaces are real, distinct and not ours', () => {
    assert.ok(ipJson(undefined, 'netns', 'list').some((n: { name: string }) => n.name === HOST));
    const own = nl.ownNetnsIdentity();
    const h = nl.netnsIdentity(hostPath);
    assert.ok(!nl.sameNetns(own, h));
    assert.ok(!nl.sameNetns(h, nl.netnsIdentity(podA)));
    assert.ok(nl.sameNetns(h, nl.netnsIdentity(hostPath)));
    assert.ok(nl.sameNetns(own, nl.netnsIdentity('/proc/self/ns/net')));
    assert.ok(nl.isNetnsFile(hostPath));
    assert.ok(!nl.isNetnsFile('/etc/hostname'));
    assert.ok(!nl.isNetnsFile('/proc/self/ns/mnt'));
    assert.ok(!nl.isNetnsFile('/run'));
    assert.throws(() => nl.createNamedNetns(HOST), /EEXIST/);
    assert.throws(() => nl.namedNetnsPath('../etc'), /invalid netns name/);
  });

  test('create then delete leaves nothing behind', () => {
    const name = `${p}-tmp`;
    cleanup.add(() => nl.deleteNamedNetns(name));
    nl.createNamedNetns(name);
    nl.deleteNamedNetns(name);
    assert.ok(!ipJson(undefined, 'netns', 'list').some((n: { name: string }) => n.name === name));
    nl.deleteNamedNetns(name); // twice is fine
  });

  test('sysctl read and write are per netns', () => {
    // A new netns copies IPv4 settings from the initial one (devconf_inherit_init_net=0), so
    // set both sides explicitly instead of assuming the default.
    nl.writeSysctl('net.ipv4.ip_forward', '1', hostPath);
    nl.writeSysctl('net.ipv4.ip_forward', '0', podA);
    assert.equal(nl.readSysctl('net.ipv4.ip_forward', hostPath), '1');
    assert.equal(nl.readSysctl(['net', 'ipv4', 'ip_forward'], podA), '0');
    assert.throws(() => nl.sysctlPath(['net', '..', 'x']), /invalid sysctl/);
  });
});

describe('links', () => {
  test('bridge: create, MTU, MAC, up, EEXIST, get by name and index', () => {
    nl.createBridge(hs, { name: 'br0', mtu: 1450 });
    const br = nl.getLinkByName(hs, 'br0')!;
    nl.setLinkMac(hs, br.index, '02:00:00:aa:bb:01');
    nl.setLinkUp(hs, br.index);
    const [j] = ipJson(HOST, '-d', 'link', 'show', 'br0');
    assert.equal(j.linkinfo.info_kind, 'bridge');
    assert.equal(j.mtu, 1450);
    assert.equal(j.address, '02:00:00:aa:bb:01');
    assert.ok(j.flags.includes('UP'));
    assert.equal(nl.getLinkByIndex(hs, br.index)!.name, 'br0');
    assert.equal(nl.getLinkByName(hs, 'nope0'), undefined);
    assert.throws(() => nl.createBridge(hs, { name: 'br0' }), (e: nl.SysError) => e.code === 'EEXIST' && /RTM_NEWLINK br0/.test(e.message));
  });

  test('veth with the peer born in another netns, master, hairpin, isolation', () => {
    const br = nl.getLinkByName(hs, 'br0')!;
    const fd = nl.openNetnsFd(podA);
    try {
      nl.createVethPair(hs, { name: 'vetha', mtu: 1450, peer: { name: 'eth0', netnsFd: fd, mtu: 1450 } });
    } finally {
      closeSync(fd);
    }
    const v = nl.getLinkByName(hs, 'vetha')!;
    assert.equal(v.kind, 'veth');
    nl.setLink(hs, { index: v.index, master: br.index, up: true });
    nl.setBridgePort(hs, { index: v.index, hairpin: true, isolated: true });
    const [j] = ipJson(HOST, '-d', 'link', 'show', 'vetha');
    assert.equal(j.master, 'br0');
    assert.equal(j.linkinfo.info_slave_data.hairpin, true);
    assert.equal(j.linkinfo.info_slave_data.isolated, true);
    const [peer] = ipJson(PODA, '-d', 'link', 'show', 'eth0');
    assert.equal(peer.linkinfo.info_kind, 'veth');
    assert.equal(peer.mtu, 1450);
    assert.equal(peer.ifindex, v.peerIndex);
    nl.setBridgePort(hs, { index: v.index, isolated: false });
    assert.equal(ipJson(HOST, '-d', 'link', 'show', 'vetha')[0].linkinfo.info_slave_data.isolated, false);
    // Kernel-side filtered dumps.
    assert.deepEqual(nl.listLinks(hs, { master: br.index }).map((l) => l.name), ['vetha']);
    assert.deepEqual(nl.listLinks(hs, { kind: 'bridge' }).map((l) => l.name), ['br0']);
  });

  test('move to a netns, rename, promisc, delete', () => {
    nl.createVethPair(hs, { name: 'vtmp0', peer: { name: 'vtmp1' } });
    const t1 = nl.getLinkByName(hs, 'vtmp1')!;
    nl.setLink(hs, { index: t1.index, promisc: true });
    assert.ok(ipJson(HOST, 'link', 'show', 'vtmp1')[0].flags.includes('PROMISC'));
    const fd = nl.openNetnsFd(podB);
    try {
      nl.moveLinkToNetns(hs, t1.index, fd);
    } finally {
      closeSync(fd);
    }
    const bs = nl.openNetnsSocket(podB);
    try {
      const moved = nl.getLinkByName(bs, 'vtmp1')!;
      assert.ok(moved);
      nl.setLinkName(bs, moved.index, 'renamed0');
      assert.equal(ipJson(PODB, 'link', 'show', 'renamed0')[0].ifname, 'renamed0');
      const t0 = nl.getLinkByName(hs, 'vtmp0')!;
      nl.deleteLink(hs, t0.index, 'vtmp0');
      assert.equal(nl.getLinkByName(bs, 'renamed0'), undefined, 'deleting one veth end deletes both');
      assert.throws(() => nl.deleteLink(hs, t0.index), /ENODEV/);
    } finally {
      bs.close();
    }
  });
});

describe('addresses and routes, and traffic', () => {
  test('addresses: IPv4 and IPv6 with nodad, list, delete', () => {
    const br = nl.getLinkByName(hs, 'br0')!;
    nl.addAddress(hs, { index: br.index, cidr: '10.231.0.1/24' });
    nl.addAddress(hs, { index: br.index, cidr: 'fd31::1/64', flags: IFA_F_NODAD });
    nl.addAddress(hs, { index: br.index, cidr: '10.231.9.1/24' });
    const j = ipJson(HOST, 'addr', 'show', 'br0')[0].addr_info as Array<{ local: string; prefixlen: number; family: string }>;
    assert.ok(j.some((a) => a.local === '10.231.0.1' && a.prefixlen === 24));
    assert.ok(j.some((a) => a.local === 'fd31::1' && a.prefixlen === 64));
    const mine = nl.listAddresses(hs, { index: br.index }).map((a) => a.cidr);
    assert.ok(mine.includes('10.231.0.1/24') && mine.includes('fd31::1/64'));
    const v6 = nl.listAddresses(hs, { index: br.index, family: 6 }).find((a) => a.ip === 'fd31::1')!;
    assert.ok(v6.flags & IFA_F_NODAD);
    nl.deleteAddress(hs, { index: br.index, cidr: '10.231.9.1/24' });
    assert.ok(!nl.listAddresses(hs, { index: br.index }).some((a) => a.ip === '10.231.9.1'));
    assert.throws(() => nl.addAddress(hs, { index: br.index, cidr: '10.231.0.1/24' }), /EEXIST/);
  });

  test('pod addresses, default routes, metrics, tables; ping both ways over the bridge', () => {
    const as = nl.openNetnsSocket(podA);
    try {
      const eth0 = nl.getLinkByName(as, 'eth0')!;
      nl.setLinkUp(as, nl.getLinkByName(as, 'lo')!.index);
      nl.addAddress(as, { index: eth0.index, cidr: '10.231.0.2/24' });
      nl.addAddress(as, { index: eth0.index, cidr: 'fd31::2/64', flags: IFA_F_NODAD });
      nl.setLinkUp(as, eth0.index);
      nl.addRoute(as, { dst: '0.0.0.0/0', gw: '10.231.0.1', mtu: 1400, advmss: 1360 });
      nl.addRoute(as, { dst: '::/0', gw: 'fd31::1', priority: 100 });
      nl.addRoute(as, { dst: '198.51.100.0/24', gw: '10.231.0.1', table: 1000, priority: 7 });
      nl.addRoute(as, { dst: '203.0.113.0/24', oif: eth0.index });
      const [def] = ipJson(PODA, 'route', 'show', 'default');
      assert.equal(def.gateway, '10.231.0.1');
      assert.ok(JSON.stringify(def.metrics).includes('1400') && JSON.stringify(def.metrics).includes('1360'));
      const [t] = ipJson(PODA, 'route', 'show', 'table', '1000');
      assert.equal(t.dst, '198.51.100.0/24');
      assert.equal(t.metric, 7);
      const [onlink] = ipJson(PODA, 'route', 'show', '203.0.113.0/24');
      assert.equal(onlink.scope, 'link');
      const [d6] = ipJson(PODA, '-6', 'route', 'show', 'default');
      assert.equal(d6.gateway, 'fd31::1');
      assert.equal(d6.metric, 100);
      const listed = nl.listRoutes(as, { family: 4 });
      const r = listed.find((x) => x.dst === '0.0.0.0/0')!;
      assert.equal(r.gw, '10.231.0.1');
      assert.equal(r.mtu, 1400);
      assert.equal(r.advmss, 1360);
      assert.ok(nl.listRoutes(as, { family: 4, table: 1000 }).some((x) => x.dst === '198.51.100.0/24' && x.priority === 7));
      nl.deleteRoute(as, { dst: '203.0.113.0/24', oif: eth0.index });
      assert.equal(ipJson(PODA, 'route', 'show', '203.0.113.0/24').length, 0);
      assert.throws(() => nl.addRoute(as, { dst: '10.5.0.0/16', gw: '10.77.0.1' }), (e: nl.SysError) => e.code === 'ENETUNREACH' && e.extack.length > 0);
    } finally {
      as.close();
    }
    // A second pod on the same bridge, wired the same way.
    const br = nl.getLinkByName(hs, 'br0')!;
    const fd = nl.openNetnsFd(podB);
    try {
      nl.createVethPair(hs, { name: 'vethb', peer: { name: 'eth0', netnsFd: fd } });
    } finally {
      closeSync(fd);
    }
    nl.setLink(hs, { index: nl.getLinkByName(hs, 'vethb')!.index, master: br.index, up: true });
    const bs = nl.openNetnsSocket(podB);
    try {
      const eth0 = nl.getLinkByName(bs, 'eth0')!;
      nl.addAddress(bs, { index: eth0.index, cidr: '10.231.0.3/24' });
      nl.addAddress(bs, { index: eth0.index, cidr: 'fd31::3/64', flags: IFA_F_NODAD });
      nl.setLinkUp(bs, eth0.index);
    } finally {
      bs.close();
    }
    assert.ok(ping(PODA, '10.231.0.3'), 'pod A reaches pod B over IPv4');
    assert.ok(ping(PODB, 'fd31::2'), 'pod B reaches pod A over IPv6');
    assert.ok(ping(PODA, '10.231.0.1'), 'pod reaches the bridge over IPv4');
    assert.ok(ping(PODA, 'fd31::1'), 'pod reaches the bridge over IPv6');
    assert.ok(ping(HOST, '10.231.0.2'), 'host reaches the pod');
  });
});

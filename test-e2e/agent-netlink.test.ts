// The netlink pieces of the cluster agent against the real kernel, in throwaway namespaces:
// a vxlan device, static FDB and neighbour entries, Pier-protocol routes sent many per
// datagram, and real traffic through the overlay they make.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nl from '../src/netlink/index.ts';
import { IFA_F_NODAD } from '../src/netlink/constants.ts';
import { Cleanup, ipJson, ping, run, uniquePrefix } from './helpers.ts';

const p = uniquePrefix();
const cleanup = new Cleanup();
const A = `${p}-a`;
const B = `${p}-b`;
const PROTO = 173;
let pathA: string;
let pathB: string;
let sa: nl.NetlinkSocket;
let sb: nl.NetlinkSocket;

before(() => {
  for (const n of [A, B]) cleanup.add(() => nl.deleteNamedNetns(n));
  pathA = nl.createNamedNetns(A);
  pathB = nl.createNamedNetns(B);
  sa = nl.openNetnsSocket(pathA);
  sb = nl.openNetnsSocket(pathB);
  cleanup.add(() => sa.close());
  cleanup.add(() => sb.close());
  // The underlay: a veth pair between A (203.0.113.1) and B (203.0.113.2).
  run('ip', ['-n', A, 'link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under0', 'netns', B]);
  for (const [ns, addr] of [[A, '203.0.113.1/24'], [B, '203.0.113.2/24']] as const) {
    run('ip', ['-n', ns, 'addr', 'add', addr, 'dev', 'under0']);
    run('ip', ['-n', ns, 'link', 'set', 'under0', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
});
after(() => cleanup.runAll());

describe('vxlan device', () => {
  test('created through netlink, read back by ip -d and by linkFromMessage', () => {
    nl.createVxlan(sa, { name: 'pier.vxlan', vni: 7, port: 8473, mtu: 1450, mac: '0e:00:00:00:00:0a' });
    const [j] = ipJson(A, '-d', 'link', 'show', 'pier.vxlan');
    assert.equal(j.linkinfo.info_kind, 'vxlan');
    assert.equal(j.linkinfo.info_data.id, 7);
    assert.equal(j.linkinfo.info_data.port, 8473);
    assert.equal(j.linkinfo.info_data.learning, false);
    assert.equal(j.address, '0e:00:00:00:00:0a');
    assert.equal(j.mtu, 1450);
    const link = nl.getLinkByName(sa, 'pier.vxlan')!;
    assert.deepEqual(link.vxlan, { vni: 7, port: 8473, learning: false });
    assert.throws(() => nl.createVxlan(sa, { name: 'pier.vxlan', vni: 7, port: 8473 }), /EEXIST/);
  });
});

describe('FDB and neighbour entries, many per datagram', () => {
  test('replace, list, replace again with a new underlay IP, delete', () => {
    const vx = nl.getLinkByName(sa, 'pier.vxlan')!.index;
    nl.setLinkUp(sa, vx);
    const peers = Array.from({ length: 40 }, (_, i) => ({ mac: `0e:00:00:00:01:${i.toString(16).padStart(2, '0')}`, ip: `10.244.${i + 1}.0`, dst: `203.0.113.${i + 10}` }));
    const report = nl.sendRequests(sa, [
      ...peers.map((x) => nl.fdbRequest('replace', { index: vx, mac: x.mac, dst: x.dst })),
      ...peers.map((x) => nl.neighbourRequest('replace', { index: vx, ip: x.ip, mac: x.mac })),
      nl.neighbourRequest('replace', { index: vx, ip: 'fd00:10:244:1::', mac: peers[0].mac }),
    ]);
    assert.deepEqual(report.failures, []);
    assert.equal(report.datagrams, 1);
    const fdb = JSON.parse(run('ip', ['netns', 'exec', A, 'bridge', '-j', 'fdb', 'show', 'dev', 'pier.vxlan'])) as Array<{ mac: string; dst?: string; state: string }>;
    assert.equal(fdb.filter((e) => e.dst).length, 40);
    assert.ok(fdb.some((e) => e.mac === peers[3].mac && e.dst === peers[3].dst && e.state === 'permanent'));
    const neigh = ipJson(A, 'neigh', 'show', 'dev', 'pier.vxlan') as Array<{ dst: string; lladdr: string; state: string[] }>;
    assert.ok(neigh.some((n) => n.dst === peers[5].ip && n.lladdr === peers[5].mac && n.state.includes('PERMANENT')));
    assert.ok(neigh.some((n) => n.dst === 'fd00:10:244:1::'));
    // Our listing, filtered in the kernel by device.
    const listed = nl.listFdb(sa, vx).filter((e) => e.dst);
    assert.equal(listed.length, 40);
    assert.deepEqual(new Set(listed.map((e) => `${e.mac}>${e.dst}`)), new Set(peers.map((x) => `${x.mac}>${x.dst}`)));
    assert.equal(nl.listNeighbours(sa, { family: 4, index: vx }).length, 40);
    assert.equal(nl.listNeighbours(sa, { family: 6, index: vx }).filter((n) => n.ip === 'fd00:10:244:1::').length, 1);
    // A peer that moved: replace swaps the underlay IP in place.
    assert.deepEqual(nl.sendRequests(sa, [nl.fdbRequest('replace', { index: vx, mac: peers[0].mac, dst: '203.0.113.200' })]).failures, []);
    assert.equal(nl.listFdb(sa, vx).find((e) => e.mac === peers[0].mac)?.dst, '203.0.113.200');
    const del = nl.sendRequests(sa, [
      ...peers.map((x) => nl.neighbourRequest('delete', { index: vx, ip: x.ip })),
      ...peers.slice(1).map((x) => nl.fdbRequest('delete', { index: vx, mac: x.mac, dst: x.dst })),
      nl.fdbRequest('delete', { index: vx, mac: peers[0].mac, dst: '203.0.113.200' }),
      nl.neighbourRequest('delete', { index: vx, ip: 'fd00:10:244:1::' }),
    ]);
    assert.deepEqual(del.failures, []);
    assert.equal(nl.listFdb(sa, vx).filter((e) => e.dst).length, 0);
    assert.equal(nl.listNeighbours(sa, { family: 4, index: vx }).length, 0);
  });
});

describe('Pier-protocol routes in batches', () => {
  test('500 routes in one datagram; a foreign route at one destination survives and is reported', () => {
    const under = nl.getLinkByName(sa, 'under0')!.index;
    // Somebody else's route, at a destination Pier will also want.
    run('ip', ['-n', A, 'route', 'add', '10.250.7.0/24', 'via', '203.0.113.99', 'proto', 'static']);
    const dsts = Array.from({ length: 500 }, (_, i) => `10.${250 + (i >> 8)}.${i & 255}.0/24`);
    assert.ok(sa.setReceiveBuffer(nl.LARGE_RECEIVE_BUFFER));
    const report = nl.sendRequests(sa, dsts.map((dst) => nl.routeRequest('add', { dst, gw: '203.0.113.2', oif: under, protocol: PROTO })), nl.LARGE_BATCH_LIMITS);
    assert.equal(report.datagrams, 1);
    assert.equal(report.messages, 500);
    assert.deepEqual(report.failures.map((f) => [f.index, f.error.code, f.request.object]), [[7, 'EEXIST', '10.250.7.0/24 via 203.0.113.2 oif ' + under + ' proto 173']]);
    const ours = ipJson(A, 'route', 'show', 'proto', String(PROTO)) as unknown[];
    assert.equal(ours.length, 499);
    assert.equal(nl.listRoutes(sa, { family: 4, protocol: PROTO }).length, 499);
    // With the default receive buffer the same work takes more, smaller datagrams.
    const small = nl.sendRequests(sa, dsts.map((dst) => nl.routeRequest('replace', { dst: dst === '10.250.7.0/24' ? '10.252.0.0/24' : dst, gw: '203.0.113.3', oif: under, protocol: PROTO })));
    assert.deepEqual(small.failures, []);
    assert.equal(small.datagrams, Math.ceil(500 / nl.DEFAULT_BATCH_LIMITS.maxMessages));
    assert.ok((ipJson(A, 'route', 'show', 'proto', String(PROTO)) as Array<{ gateway: string }>).every((r) => r.gateway === '203.0.113.3'));
    // Deleting by protocol: ours go, the foreign route at 10.250.7.0/24 cannot be hit.
    const gone = nl.sendRequests(sa, [...dsts, '10.252.0.0/24'].map((dst) => nl.routeRequest('delete', { dst, protocol: PROTO })), nl.LARGE_BATCH_LIMITS);
    assert.deepEqual(gone.failures.map((f) => [f.index, f.error.code]), [[7, 'ESRCH']]);
    assert.equal((ipJson(A, 'route', 'show', 'proto', String(PROTO)) as unknown[]).length, 0);
    const [foreign] = ipJson(A, 'route', 'show', '10.250.7.0/24');
    assert.equal(foreign.gateway, '203.0.113.99');
    assert.equal(foreign.protocol, 'static');
  });
});

describe('traffic over the overlay', () => {
  test('B\'s "pod" address is reached from A through pier.vxlan (FDB + neighbour + onlink route), IPv4 and IPv6', () => {
    nl.createVxlan(sb, { name: 'pier.vxlan', vni: 7, port: 8473, mac: '0e:00:00:00:00:0b' });
    const vxA = nl.getLinkByName(sa, 'pier.vxlan')!.index;
    const vxB = nl.getLinkByName(sb, 'pier.vxlan')!.index;
    nl.setLinkUp(sb, vxB);
    // Each side's VTEP address is its pod subnet's network address; its "pods" live on lo.
    nl.addAddress(sa, { index: vxA, cidr: '10.244.0.0/32' });
    nl.addAddress(sb, { index: vxB, cidr: '10.244.1.0/32' });
    nl.addAddress(sa, { index: vxA, cidr: 'fd00:10:244::/128', flags: IFA_F_NODAD });
    nl.addAddress(sb, { index: vxB, cidr: 'fd00:10:244:1::/128', flags: IFA_F_NODAD });
    nl.addAddress(sb, { index: 1, cidr: '10.244.1.5/32' });
    nl.addAddress(sb, { index: 1, cidr: 'fd00:10:244:1::5/128', flags: IFA_F_NODAD });
    nl.addAddress(sa, { index: 1, cidr: '10.244.0.5/32' });
    nl.addAddress(sa, { index: 1, cidr: 'fd00:10:244::5/128', flags: IFA_F_NODAD });
    const wire = (s: nl.NetlinkSocket, vx: number, peer: { mac: string; under: string; vtep4: string; vtep6: string; cidr4: string; cidr6: string }) =>
      nl.sendRequests(s, [
        nl.fdbRequest('replace', { index: vx, mac: peer.mac, dst: peer.under }),
        nl.neighbourRequest('replace', { index: vx, ip: peer.vtep4, mac: peer.mac }),
        nl.neighbourRequest('replace', { index: vx, ip: peer.vtep6, mac: peer.mac }),
        nl.routeRequest('replace', { dst: peer.cidr4, gw: peer.vtep4, oif: vx, onlink: true, protocol: PROTO }),
        nl.routeRequest('replace', { dst: peer.cidr6, gw: peer.vtep6, oif: vx, onlink: true, protocol: PROTO }),
      ]).failures;
    assert.deepEqual(wire(sa, vxA, { mac: '0e:00:00:00:00:0b', under: '203.0.113.2', vtep4: '10.244.1.0', vtep6: 'fd00:10:244:1::', cidr4: '10.244.1.0/24', cidr6: 'fd00:10:244:1::/64' }), []);
    assert.deepEqual(wire(sb, vxB, { mac: '0e:00:00:00:00:0a', under: '203.0.113.1', vtep4: '10.244.0.0', vtep6: 'fd00:10:244::', cidr4: '10.244.0.0/24', cidr6: 'fd00:10:244::/64' }), []);
    const [r] = ipJson(A, 'route', 'show', '10.244.1.0/24');
    assert.deepEqual([r.gateway, r.dev, r.flags, r.protocol], ['10.244.1.0', 'pier.vxlan', ['onlink'], String(PROTO)]);
    assert.ok(ping(A, '10.244.1.5'), 'A reaches B\'s pod address over the overlay (IPv4)');
    assert.ok(ping(A, 'fd00:10:244:1::5'), 'A reaches B\'s pod address over the overlay (IPv6)');
    // The decoded route says onlink and Pier's protocol.
    const mine = nl.listRoutes(sa, { family: 4, protocol: PROTO });
    assert.deepEqual(mine.map((x) => [x.dst, x.gw, x.oif, Boolean(x.onlink)]), [['10.244.1.0/24', '10.244.1.0', vxA, true]]);
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitNodes, type AcceptedNode, type ClusterSettings } from './admission.ts';
import { parseCidr, type Cidr } from './cidr.ts';
import { nodeInfoOf } from './node-info.ts';
import { directLink, planDataplane, vtepIpOf, type LocalAddress } from './plan.ts';
import { diffDataplane, type KernelState } from './diff.ts';
import { nodeObject, type NodeSpec } from './testdata-nodes.ts';
import { vtepMacOf } from './vtep.ts';

const c = (t: string): Cidr => (parseCidr(t) as { value: Cidr }).value;
const cluster: ClusterSettings = { clusterCidrs: [c('10.244.0.0/16'), c('fd00:10:244::/56')], families: new Set([4, 6]), apiServerIps: [] };
function admit(...specs: NodeSpec[]): Map<string, AcceptedNode> {
  return admitNodes(specs.map((s) => nodeInfoOf(nodeObject(s))!), cluster).accepted;
}

// This node: 203.0.113.1/24 and fd00:203::1/64 on ifindex 2; 198.51.100.0/24 is behind a router.
const local: LocalAddress[] = [{ index: 2, cidr: '203.0.113.1/24' }, { index: 2, cidr: 'fd00:203::1/64' }];
const nodes = admit(
  { name: 'a', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'], internalIPs: ['203.0.113.1', 'fd00:203::1'], created: '2025-01-01T00:00:00Z' },
  { name: 'b', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIPs: ['203.0.113.2', 'fd00:203::2'], vtepMac: '0e:00:00:00:00:0b' },
  { name: 'c', podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'], internalIPs: ['198.51.100.3'], vtepMac: '0e:00:00:00:00:0c' },
  { name: 'd', podCIDRs: ['10.244.3.0/24'], internalIPs: ['198.51.100.4'] },
);
const self = nodes.get('a')!;
const peers = [...nodes.values()];
const MAC = vtepMacOf('a');

test('vtep MAC: stable per name, unicast, locally administered', () => {
  assert.equal(vtepMacOf('a'), vtepMacOf('a'));
  assert.notEqual(vtepMacOf('a'), vtepMacOf('b'));
  const first = parseInt(MAC.slice(0, 2), 16);
  assert.equal(first & 1, 0);
  assert.equal(first & 2, 2);
  assert.equal(vtepIpOf('fd00:10:244:1::/64'), 'fd00:10:244:1::');
});

test('directLink: only subnets this host is on, never its own address', () => {
  assert.equal(directLink('203.0.113.9', local), 2);
  assert.equal(directLink('fd00:203::9', local), 2);
  assert.equal(directLink('198.51.100.3', local), undefined);
  assert.equal(directLink('203.0.113.1', local), undefined);
});

test('auto: host-gw to a peer on the same subnet (both families), VXLAN to the others', () => {
  const p = planDataplane(self, peers, local, 'auto', MAC);
  assert.deepEqual(p.routes, [
    { family: 4, dst: '10.244.1.0/24', gw: '203.0.113.2', oif: 2, onlink: false },
    { family: 6, dst: 'fd00:10:244:1::/64', gw: 'fd00:203::2', oif: 2, onlink: false },
    { family: 4, dst: '10.244.2.0/24', gw: '10.244.2.0', oif: 'vxlan', onlink: true },
    { family: 6, dst: 'fd00:10:244:2::/64', gw: 'fd00:10:244:2::', oif: 'vxlan', onlink: true },
  ]);
  assert.deepEqual(p.fdb, [{ mac: '0e:00:00:00:00:0c', dst: '198.51.100.3' }]);
  assert.deepEqual(p.neighbours, [{ ip: '10.244.2.0', mac: '0e:00:00:00:00:0c' }, { ip: 'fd00:10:244:2::', mac: '0e:00:00:00:00:0c' }]);
  assert.deepEqual(p.vtepAddresses, ['10.244.0.0/32', 'fd00:10:244::/128']);
  assert.deepEqual(p.problems, [{ node: 'd', reason: 'has no VTEP MAC annotation yet (its agent publishes it)' }]);
  assert.deepEqual(p.peers.map((x) => [x.name, x.routes.map((r) => r.via)]), [['b', ['host-gw', 'host-gw']], ['c', ['vxlan', 'vxlan']], ['d', []]]);
});

test('host-gw only: unreachable peers are problems, no overlay; vxlan only: everything overlays', () => {
  const hg = planDataplane(self, peers, local, 'host-gw', MAC);
  assert.equal(hg.vxlan, false);
  assert.deepEqual(hg.routes.map((r) => r.dst), ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  assert.deepEqual(hg.vtepAddresses, []);
  assert.match(hg.problems.find((x) => x.node === 'c')!.reason, /198\.51\.100\.3 is not on a directly connected subnet, and --backend host-gw has no overlay/);
  const vx = planDataplane(self, peers, local, 'vxlan', MAC);
  assert.ok(vx.routes.every((r) => r.oif === 'vxlan' && r.onlink));
  assert.deepEqual(vx.fdb, [{ mac: '0e:00:00:00:00:0b', dst: '203.0.113.2' }, { mac: '0e:00:00:00:00:0c', dst: '198.51.100.3' }]);
});

test('a peer family this node lacks, a peer with no underlay InternalIP, a duplicated VTEP MAC', () => {
  const v4self = admit({ name: 'a', podCIDRs: ['10.244.0.0/24'], internalIPs: ['203.0.113.1'] }).get('a')!;
  const p = planDataplane(v4self, [nodes.get('b')!], local, 'auto', MAC);
  assert.deepEqual(p.routes.map((r) => r.dst), ['10.244.1.0/24']);
  assert.match(p.problems[0].reason, /IPv6 podCIDR fd00:10:244:1::\/64 is not routed: this node has no IPv6 podCIDR/);
  const more = admit(
    { name: 'e', podCIDRs: ['10.244.5.0/24'], internalIPs: ['fd00:198::5'], vtepMac: '0e:00:00:00:00:0e' },
    { name: 'f', podCIDRs: ['10.244.6.0/24'], internalIPs: ['198.51.100.6'], vtepMac: '0e:00:00:00:00:0c' },
    { name: 'g', podCIDRs: ['10.244.7.0/24'], internalIPs: ['198.51.100.7'], vtepMac: MAC },
  );
  const q = planDataplane(self, [nodes.get('c')!, ...more.values()], local, 'auto', MAC);
  assert.deepEqual(q.problems, [
    { node: 'e', reason: 'has no IPv4 InternalIP to reach it over the VXLAN underlay' },
    { node: 'f', reason: "its VTEP MAC 0e:00:00:00:00:0c is also node c's" },
    { node: 'g', reason: `its VTEP MAC ${MAC} is also this node's` },
  ]);
});

test('diff: from nothing, everything is added, the overlay entries before the routes', () => {
  const p = planDataplane(self, peers, local, 'auto', MAC);
  const empty: KernelState = { routes: [], vxlanIndex: 9, fdb: [], neighbours: [], addresses: [] };
  const ops = diffDataplane(p, empty);
  assert.deepEqual(ops.map((o) => `${o.kind} ${o.verb}`), [
    'addr add', 'addr add', 'fdb replace', 'neigh replace', 'neigh replace', 'route add', 'route add', 'route add', 'route add',
  ]);
  assert.deepEqual(ops.find((o) => o.kind === 'route' && o.route.dst === '10.244.2.0/24'), { kind: 'route', verb: 'add', route: { family: 4, dst: '10.244.2.0/24', gw: '10.244.2.0', oif: 9, onlink: true } });
});

test('diff: an equal kernel needs nothing; changes are replaced in place; stale ones go last', () => {
  const p = planDataplane(self, peers, local, 'auto', MAC);
  const same: KernelState = {
    vxlanIndex: 9,
    routes: [
      { family: 4, dst: '10.244.1.0/24', gw: '203.0.113.2', oif: 2, onlink: false },
      { family: 6, dst: 'fd00:10:244:1::/64', gw: 'fd00:203::2', oif: 2, onlink: false },
      { family: 4, dst: '10.244.2.0/24', gw: '10.244.2.0', oif: 9, onlink: true },
      { family: 6, dst: 'fd00:10:244:2::/64', gw: 'fd00:10:244:2::', oif: 9, onlink: true },
    ],
    fdb: [{ mac: '0e:00:00:00:00:0c', dst: '198.51.100.3', permanent: true }],
    neighbours: [{ ip: '10.244.2.0', mac: '0e:00:00:00:00:0c', permanent: true }, { ip: 'fd00:10:244:2::', mac: '0e:00:00:00:00:0c', permanent: true }, { ip: 'fe80::1', permanent: false }],
    addresses: ['10.244.0.0/32', 'fd00:10:244::/128'],
  };
  assert.deepEqual(diffDataplane(p, same), []);
  const changed: KernelState = {
    ...same,
    routes: [
      { family: 4, dst: '10.244.1.0/24', gw: '203.0.113.99', oif: 2, onlink: false },
      ...same.routes.slice(1),
      { family: 4, dst: '10.244.77.0/24', gw: '203.0.113.77', oif: 2, onlink: false },
    ],
    fdb: [{ mac: '0e:00:00:00:00:0c', dst: '198.51.100.33', permanent: true }, { mac: '0e:00:00:00:00:77', dst: '198.51.100.77', permanent: true }],
    neighbours: [...same.neighbours, { ip: '10.244.77.0', mac: '0e:00:00:00:00:77', permanent: true }],
    addresses: [...same.addresses, '10.244.99.0/32'],
  };
  assert.deepEqual(diffDataplane(p, changed).map((o) => JSON.stringify(o)), [
    { kind: 'fdb', verb: 'replace', mac: '0e:00:00:00:00:0c', dst: '198.51.100.3' },
    { kind: 'route', verb: 'replace', route: { family: 4, dst: '10.244.1.0/24', gw: '203.0.113.2', oif: 2, onlink: false } },
    { kind: 'route', verb: 'delete', route: { family: 4, dst: '10.244.77.0/24', gw: '203.0.113.77', oif: 2, onlink: false } },
    { kind: 'neigh', verb: 'delete', ip: '10.244.77.0' },
    { kind: 'fdb', verb: 'delete', mac: '0e:00:00:00:00:77', dst: '198.51.100.77' },
    { kind: 'addr', verb: 'delete', cidr: '10.244.99.0/32' },
  ].map((o) => JSON.stringify(o)));
});

test('diff without a vxlan device: overlay routes wait, host-gw routes go ahead', () => {
  const p = planDataplane(self, peers, local, 'auto', MAC);
  const ops = diffDataplane(p, { routes: [], fdb: [], neighbours: [], addresses: [] });
  assert.deepEqual(ops.map((o) => (o.kind === 'route' ? o.route.dst : o.kind)), ['10.244.1.0/24', 'fd00:10:244:1::/64']);
});

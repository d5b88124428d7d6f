import { test } from 'node:test';
import assert from 'node:assert/strict';
import { admitNodes, type ClusterSettings } from './admission.ts';
import { parseCidr, type Cidr } from './cidr.ts';
import { nodeInfoOf, type NodeInfo } from './node-info.ts';
import { nodeObject, type NodeSpec } from './testdata-nodes.ts';

const c = (t: string): Cidr => (parseCidr(t) as { value: Cidr }).value;
const node = (s: NodeSpec): NodeInfo => nodeInfoOf(nodeObject(s))!;
const dual: ClusterSettings = { clusterCidrs: [c('10.244.0.0/16'), c('fd00:10:244::/56')], families: new Set([4, 6]), apiServerIps: ['10.96.0.1', '203.0.113.250'] };
const v4only: ClusterSettings = { clusterCidrs: [c('10.244.0.0/16')], families: new Set([4]), apiServerIps: [] };

const a = node({ name: 'a', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'], internalIPs: ['203.0.113.1', 'fd00:203::1'], created: '2025-01-01T00:00:00Z' });
const b = node({ name: 'b', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIPs: ['203.0.113.2', 'fd00:203::2'], created: '2025-01-02T00:00:00Z', vtepMac: '0E:00:00:00:00:0B' });

function verdicts(nodes: NodeInfo[], cluster = dual) {
  const r = admitNodes(nodes, cluster);
  return { accepted: [...r.accepted.keys()].sort(), refused: Object.fromEntries(r.refused.map((x) => [x.node, x.reason])) };
}

test('good nodes are accepted with canonical CIDRs, InternalIPs per family and the VTEP MAC', () => {
  const r = admitNodes([b, a], dual);
  assert.deepEqual([...r.accepted.keys()], ['a', 'b'], 'oldest first');
  const nb = r.accepted.get('b')!;
  assert.deepEqual(nb.podCidrs.map((x) => x.text), ['10.244.1.0/24', 'fd00:10:244:1::/64']);
  assert.deepEqual(nb.internalIPs, { 4: '203.0.113.2', 6: 'fd00:203::2' });
  assert.equal(nb.underlayFamily, 4);
  assert.equal(admitNodes([node({ name: 'v6first', podCIDRs: ['10.244.7.0/24'], internalIPs: ['fd00:203::7', '203.0.113.7'] })], dual).accepted.get('v6first')!.underlayFamily, 4, 'IPv4 underlay whenever there is one');
  assert.equal(nb.vtepMac, '0e:00:00:00:00:0b');
  assert.deepEqual(r.refused, []);
});

test('each kind of bad data is refused with the node and the reason, and the others go on', () => {
  const late = (s: NodeSpec) => node({ created: '2025-02-01T00:00:00Z', ...s });
  const bad = [
    late({ name: 'unparsable', podCIDRs: ['10.244.2.0/33'], internalIPs: ['203.0.113.3'] }),
    late({ name: 'hostbits', podCIDRs: ['10.244.2.7/24'], internalIPs: ['203.0.113.3'] }),
    late({ name: 'overlap', podCIDRs: ['10.244.1.128/25'], internalIPs: ['203.0.113.4'] }),
    late({ name: 'covers-node', podCIDRs: ['10.244.4.0/24'], internalIPs: ['203.0.113.5'] }),
    late({ name: 'covers-api', podCIDRs: ['10.96.0.0/24'], internalIPs: ['203.0.113.6'] }),
    late({ name: 'outside', podCIDRs: ['172.16.0.0/24'], internalIPs: ['203.0.113.7'] }),
    late({ name: 'no-internal-ip', podCIDRs: ['10.244.8.0/24'], externalIPs: ['198.51.100.8'] }),
    late({ name: 'garbage-ip', podCIDRs: ['10.244.9.0/24'], internalIPs: ['203.0.113.999'] }),
    late({ name: 'inside-pods', podCIDRs: ['10.244.10.0/24'], internalIPs: ['10.244.0.77'] }),
    late({ name: 'two-v4', podCIDRs: ['10.244.11.0/24', '10.244.12.0/24'], internalIPs: ['203.0.113.11'] }),
    late({ name: 'pending', internalIPs: ['203.0.113.12'] }),
    late({ name: 'own-address', podCIDRs: ['10.244.13.0/24'], internalIPs: ['10.244.13.1'] }),
  ];
  // "covers-node": a later node whose podCIDR covers an earlier node's address.
  const target = node({ name: 'target', podCIDRs: ['10.244.3.0/24'], internalIPs: ['10.244.4.9'], created: '2025-01-03T00:00:00Z' });
  const wide: ClusterSettings = { ...dual, clusterCidrs: [c('10.0.0.0/8'), c('fd00:10:244::/56')] };
  const v = verdicts([a, b, target, ...bad], wide);
  assert.deepEqual(v.accepted, ['a', 'b', 'target']);
  assert.deepEqual(v.refused, {
    unparsable: 'podCIDR "10.244.2.0/33" has a bad prefix length (0-32)',
    hostbits: 'podCIDR "10.244.2.7/24" has host bits set (the network is 10.244.2.0/24)',
    overlap: "podCIDR 10.244.1.128/25 overlaps node b's 10.244.1.0/24",
    'covers-node': "podCIDR 10.244.4.0/24 covers node target's address 10.244.4.9",
    'covers-api': "podCIDR 10.96.0.0/24 covers the API server's address 10.96.0.1",
    outside: 'podCIDR 172.16.0.0/24 lies outside --cluster-cidr 10.0.0.0/8,fd00:10:244::/56',
    'no-internal-ip': 'has no InternalIP',
    'garbage-ip': 'has no InternalIP that parses (203.0.113.999)',
    'inside-pods': "address 10.244.0.77 lies inside node a's podCIDR 10.244.0.0/24",
    'two-v4': 'has two IPv4 podCIDRs (10.244.11.0/24, 10.244.12.0/24)',
    pending: 'has no podCIDR yet',
    'own-address': "podCIDR 10.244.13.0/24 covers the node's own address 10.244.13.1",
  });
  assert.equal(verdicts([a, node({ name: 'x', podCIDRs: ['10.99.0.0/24'], internalIPs: ['203.0.113.9'] })]).refused.x, 'podCIDR 10.99.0.0/24 lies outside --cluster-cidr 10.244.0.0/16,fd00:10:244::/56');
});

test('an IPv6-only node in an IPv4-only cluster, and an IPv6 podCIDR there', () => {
  const v6 = node({ name: 'v6', podCIDRs: ['fd00:10:244:5::/64'], internalIPs: ['fd00:203::5'] });
  const mixed = node({ name: 'mixed', podCIDRs: ['10.244.6.0/24', 'fd00:10:244:6::/64'], internalIPs: ['203.0.113.6'] });
  const v = verdicts([v6, mixed], v4only);
  assert.deepEqual(v.refused, {
    v6: 'is IPv6-only (podCIDRs fd00:10:244:5::/64) but the cluster is IPv4-only',
    mixed: 'has an IPv6 podCIDR but the cluster is IPv4-only',
  });
});

test('the oldest node wins a conflict, whatever order the API lists them in', () => {
  const newcomer = node({ name: 'aaa-new', podCIDRs: ['10.244.1.0/24'], internalIPs: ['203.0.113.9'], created: '2025-03-01T00:00:00Z' });
  for (const order of [[a, b, newcomer], [newcomer, b, a]]) {
    const v = verdicts(order);
    assert.deepEqual(v.accepted, ['a', 'b']);
    assert.match(v.refused['aaa-new'], /overlaps node b's/);
  }
});

test('a node whose update is bad keeps its last accepted state; a deleted node is gone', () => {
  const first = admitNodes([a, b], dual);
  const moved = node({ name: 'b', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIPs: ['10.244.0.50'], created: '2025-01-02T00:00:00Z' });
  const second = admitNodes([a, moved], dual, first.accepted);
  assert.equal(second.accepted.get('b'), first.accepted.get('b'), 'the previous state is kept');
  assert.deepEqual(second.refused, [{ node: 'b', reason: "address 10.244.0.50 lies inside node a's podCIDR 10.244.0.0/24", keptPrevious: true }]);
  const third = admitNodes([a], dual, second.accepted);
  assert.deepEqual([...third.accepted.keys()], ['a']);
});

test('a refused newcomer is accepted once the node it clashed with is deleted', () => {
  const newcomer = node({ name: 'c', podCIDRs: ['10.244.1.0/24'], internalIPs: ['203.0.113.9'], created: '2025-03-01T00:00:00Z' });
  const before = admitNodes([a, b, newcomer], dual);
  assert.ok(!before.accepted.has('c'));
  const after = admitNodes([a, newcomer], dual, before.accepted);
  assert.ok(after.accepted.has('c'));
});

test('a multicast or malformed VTEP MAC is ignored (no overlay to that node until it is fixed)', () => {
  for (const mac of ['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', 'zz:00:00:00:00:01', '0e:00:00:00:00']) {
    const r = admitNodes([node({ name: 'm', podCIDRs: ['10.244.1.0/24'], internalIPs: ['203.0.113.2'], vtepMac: mac })], dual);
    assert.equal(r.accepted.get('m')!.vtepMac, undefined, mac);
  }
});

test('nodeInfoOf reads only well-typed fields of an untrusted object', () => {
  assert.equal(nodeInfoOf(null), undefined);
  assert.equal(nodeInfoOf({ metadata: { name: 7 } }), undefined);
  const n = nodeInfoOf({ metadata: { name: 'x', creationTimestamp: new Date('2025-01-01T00:00:00Z'), annotations: { 'pier.dev/vtep-mac': 5 } }, spec: { podCIDRs: ['10.244.0.0/24', 3, null] }, status: { addresses: [{ type: 'InternalIP', address: ['x'] }, 'junk', { type: 'InternalIP', address: '203.0.113.1' }], conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'PierRoutesCreated' }] } })!;
  assert.deepEqual(n, { name: 'x', uid: '', resourceVersion: '', created: '2025-01-01T00:00:00.000Z', podCIDRs: ['10.244.0.0/24'], internalIPs: ['203.0.113.1'], addresses: ['203.0.113.1'], networkUnavailable: { status: 'False', reason: 'PierRoutesCreated' } });
  assert.deepEqual(nodeInfoOf({ metadata: { name: 'y' }, spec: { podCIDR: '10.244.1.0/24' } })!.podCIDRs, ['10.244.1.0/24']);
  // The typed client's list gives a Date, a watch event RFC 3339 text: the same node either way.
  assert.equal(nodeInfoOf({ metadata: { name: 'z', creationTimestamp: '2025-01-01T00:00:00Z' } })!.created, '2025-01-01T00:00:00.000Z');
});

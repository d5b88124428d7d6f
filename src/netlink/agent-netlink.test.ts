// Golden tests of the netlink messages the cluster agent sends: each builder's bytes against
// what iproute2 sends for the same command, and kernel dump replies decoded (and re-encoded to
// the same bytes). The goldens come from src/netlink/testdata/capture-agent.ts, never from the
// code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildNewVxlan, decodeLinkMessage, encodeLinkMessage, linkFromMessage } from './link-codec.ts';
import { buildFdb, buildNeighbour, buildNeighDump, decodeNeighMessage, encodeNeighMessage, fdbFromMessage, neighbourFromMessage } from './neigh-codec.ts';
import { buildRouteDump, decodeRouteMessage, encodeRouteMessage, routeFromMessage } from './route-codec.ts';
import { fdbRequest, neighbourRequest } from './neighs.ts';
import { routeRequest } from './routes.ts';
import { createVxlanRequestFlags } from './links.ts';
import type { NlRequest } from './request-batch.ts';

interface Golden { argv: string[]; type: number; flags: number; payload: string }
const cap = JSON.parse(readFileSync(new URL('./testdata/agent-netlink.json', import.meta.url), 'utf8')) as {
  ifindex: Record<string, number>;
  requests: Record<string, Golden>;
  replies: Record<string, string[]>;
};
const vx = cap.ifindex['pier.vxlan'];
const under = cap.ifindex.under0;
const PROTO = 173;
// NLM_F_REQUEST | NLM_F_ACK: the batch sender adds them; the goldens' flags include them.
const BASE = 0x1 | 0x4;

function same(name: string, built: Buffer, flags?: number) {
  const g = cap.requests[name];
  assert.equal(built.toString('hex'), g.payload, `${g.argv.join(' ')}: payload`);
  if (flags !== undefined) assert.equal(flags, g.flags, `${g.argv.join(' ')}: nlmsg_flags`);
}
const sameRequest = (name: string, r: NlRequest) => {
  assert.equal(r.type, cap.requests[name].type);
  same(name, r.payload, BASE | r.flags);
};

test('vxlan device: ip link add ... type vxlan id 7 nolearning dstport 8473, byte for byte', () => {
  same('newVxlan', buildNewVxlan({ name: 'pier.vxlan', vni: 7, port: 8473, mtu: 1450, mac: '0e:01:02:03:04:05' }), BASE | createVxlanRequestFlags);
  same('newVxlanLearning', buildNewVxlan({ name: 'pier.vx1', vni: 1, port: 4789, learning: true }));
  same('newVxlanLocal6', buildNewVxlan({ name: 'pier.vx6', vni: 1, port: 8473, local: 'fd00:203::1' }));
});

test('neighbour entries: ip neigh replace/del ... nud permanent, IPv4 and IPv6', () => {
  sameRequest('neighReplace4', neighbourRequest('replace', { index: vx, ip: '10.244.1.0', mac: '0e:00:00:00:00:02' }));
  sameRequest('neighReplace6', neighbourRequest('replace', { index: vx, ip: 'fd00:10:244:1::', mac: '0e:00:00:00:00:02' }));
  sameRequest('neighDel4', neighbourRequest('delete', { index: vx, ip: '10.244.1.0' }));
  same('neighDump4', buildNeighDump({ family: 4, index: vx }));
});

test('FDB entries: bridge fdb replace/del MAC dev pier.vxlan dst IP self permanent', () => {
  sameRequest('fdbReplace', fdbRequest('replace', { index: vx, mac: '0e:00:00:00:00:02', dst: '203.0.113.2' }));
  sameRequest('fdbDel', fdbRequest('delete', { index: vx, mac: '0e:00:00:00:00:02', dst: '203.0.113.2' }));
});

test('routes with a protocol: onlink replace, gateway add (IPv4, IPv6), delete, filtered dump', () => {
  sameRequest('routeReplaceOnlink', routeRequest('replace', { dst: '10.244.1.0/24', gw: '10.244.1.0', oif: vx, onlink: true, protocol: PROTO }));
  sameRequest('routeAddGw', routeRequest('add', { dst: '10.244.2.0/24', gw: '203.0.113.2', oif: under, protocol: PROTO }));
  sameRequest('routeAddGw6', routeRequest('add', { dst: 'fd00:10:244:2::/64', gw: 'fd00:203::2', oif: under, protocol: PROTO }));
  sameRequest('routeDel', routeRequest('delete', { dst: '10.244.2.0/24', gw: '203.0.113.2', oif: under, protocol: PROTO }));
  same('routeDump4Proto', buildRouteDump({ family: 4, table: 254, protocol: PROTO }));
});

test('kernel replies: the vxlan link, its neighbour and FDB entries, Pier-protocol routes', () => {
  const [linkHex] = cap.replies.vxlanLink;
  const lm = decodeLinkMessage(Buffer.from(linkHex, 'hex'));
  assert.equal(encodeLinkMessage(lm).toString('hex'), linkHex);
  const link = linkFromMessage(lm);
  assert.equal(link.name, 'pier.vxlan');
  assert.equal(link.kind, 'vxlan');
  assert.equal(link.mac, '0e:01:02:03:04:05');
  assert.equal(link.mtu, 1450);
  assert.deepEqual(link.vxlan, { vni: 7, port: 8473, learning: false });
  const six = linkFromMessage(decodeLinkMessage(Buffer.from(cap.replies.vxlan6Link[0], 'hex')));
  assert.deepEqual(six.vxlan, { vni: 1, port: 8473, learning: false, local: 'fd00:203::1' });

  const [nHex] = cap.replies.neigh4;
  const nm = decodeNeighMessage(Buffer.from(nHex, 'hex'));
  assert.equal(encodeNeighMessage(nm).toString('hex'), nHex);
  assert.deepEqual(neighbourFromMessage(nm), { index: vx, ip: '10.244.1.0', mac: '0e:00:00:00:00:02', state: 0x80, flags: 0 });

  const [fHex] = cap.replies.fdb;
  const fm = decodeNeighMessage(Buffer.from(fHex, 'hex'));
  assert.equal(encodeNeighMessage(fm).toString('hex'), fHex);
  assert.deepEqual(fdbFromMessage(fm), { index: vx, mac: '0e:00:00:00:00:02', dst: '203.0.113.2', state: 0xc0, flags: 0x02 });

  const routes = cap.replies.routes4.map((h) => {
    const m = decodeRouteMessage(Buffer.from(h, 'hex'));
    assert.equal(encodeRouteMessage(m).toString('hex'), h);
    return routeFromMessage(m);
  });
  assert.deepEqual(
    routes.map((r) => [r.dst, r.gw, r.oif, r.protocol, Boolean(r.onlink)]),
    [
      ['10.244.1.0/24', '10.244.1.0', vx, PROTO, true],
      ['10.244.2.0/24', '203.0.113.2', under, PROTO, false],
    ],
  );
});

test('builders refuse what is not an address', () => {
  assert.throws(() => buildNeighbour({ index: 1, ip: '10.0.0.300', mac: '0e:00:00:00:00:01' }), /not an IP address/);
  assert.throws(() => buildFdb({ index: 1, mac: 'zz:00:00:00:00:01', dst: '203.0.113.2' }), /bad MAC/);
});

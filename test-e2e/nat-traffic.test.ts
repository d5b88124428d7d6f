// Masquerade and hostPort DNAT with real TCP and UDP traffic, through dist/pier run as a
// runtime runs it, in a TestWorld: pods A and B on one bridge, an outside host with no route
// back to the pod subnet, echo servers that answer with the address they saw.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, TestWorld } from './cni-harness.ts';
import { ipJson } from './helpers.ts';
import { addOutside, HOST_OTHER, HOST_OUT, OUTSIDE, startServer, tableText, talk } from './nat-fixtures.ts';
import { listAttachments } from '../src/ipam/ipam.ts';

const V = '1.1.0';
const SUBNET = '10.214.0.0/24';
const GATEWAY = '10.214.0.1';
const TCP_PORT = 8080;
const UDP_PORT = 5353;
const OUT_TCP = 9000;
const OUT_UDP = 9053;
/** Pod A's mappings: any address (tcp, udp), and one narrowed to HOST_OUT. */
const A_MAPPINGS = [
  { hostPort: 18080, containerPort: TCP_PORT, protocol: 'tcp' },
  { hostPort: 18053, containerPort: UDP_PORT, protocol: 'udp' },
  { hostPort: 18081, containerPort: TCP_PORT, protocol: 'tcp', hostIP: HOST_OUT },
];

describe('NAT with real traffic', () => {
  let world: TestWorld;
  let table: string;
  let outside: string;
  let podA: string;
  let podB: string;
  let addrA: string;
  const ids = { A: '', B: '', C: '' };

  const conf = (portMappings: unknown[]) =>
    world.conf(V, {
      subnet: SUBNET,
      extra: { ipMasq: true, hairpinMode: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings } },
    });
  const add = (id: string, netns: string, portMappings: unknown[]) =>
    world.call({ command: 'ADD', containerId: id, netns: world.netnsPath(netns), ifname: 'eth0' }, conf(portMappings));

  before(async () => {
    ensureBuilt();
    world = new TestWorld();
    table = `pier_test_${world.prefix}`;
    for (const k of Object.keys(ids) as (keyof typeof ids)[]) ids[k] = `${world.prefix}-ctr-${k}`;
    outside = addOutside(world);
    podA = world.addPod();
    podB = world.addPod();
    const a = add(ids.A, podA, A_MAPPINGS);
    assert.equal(a.status, 0, a.stdout + a.stderr);
    addrA = a.json.ips[0].address.split('/')[0];
    const b = add(ids.B, podB, []);
    assert.equal(b.status, 0, b.stdout + b.stderr);
    await startServer(world, podA, TCP_PORT, UDP_PORT);
    await startServer(world, outside, OUT_TCP, OUT_UDP);
  });

  after(() => world?.cleanup.runAll());

  it('(a) a pod reaches the outside host, which sees the host address (masquerade)', () => {
    assert.equal(talk(podA, 'tcp', OUTSIDE, OUT_TCP), HOST_OUT);
    assert.equal(talk(podB, 'udp', OUTSIDE, OUT_UDP), HOST_OUT);
  });

  it('(b) the outside host reaches pod A through the host address and hostPort (prerouting DNAT)', () => {
    assert.equal(talk(outside, 'tcp', HOST_OUT, 18080), OUTSIDE);
    // Another local address works too: the mapping has no hostIP.
    assert.equal(talk(outside, 'tcp', HOST_OTHER, 18080), OUTSIDE);
  });

  it('(c) the host reaches it through a local address (output DNAT) and 127.0.0.1 (route_localnet)', () => {
    assert.equal(talk(world.host, 'tcp', HOST_OUT, 18080), HOST_OUT);
    // 127.0.0.1 cannot leave the host as a source: the pod sees the bridge address.
    assert.equal(talk(world.host, 'tcp', '127.0.0.1', 18080), GATEWAY);
    const localnet = world.exec('cat', [`/proc/sys/net/ipv4/conf/${world.prefix}br/route_localnet`]);
    assert.equal(localnet.stdout.trim(), '1');
  });

  it('(d) pod B, and pod A itself, reach pod A through the host address (hairpin)', () => {
    assert.equal(talk(podB, 'tcp', HOST_OUT, 18080), GATEWAY);
    assert.equal(talk(podA, 'tcp', HOST_OUT, 18080), GATEWAY);
    // The bridge address is a local address as well.
    assert.equal(talk(podB, 'tcp', GATEWAY, 18080), GATEWAY);
  });

  it('(e) a mapping with hostIP answers on that address only', () => {
    assert.equal(talk(outside, 'tcp', HOST_OUT, 18081), OUTSIDE);
    assert.equal(talk(world.host, 'tcp', HOST_OUT, 18081), HOST_OUT);
    assert.match(talk(outside, 'tcp', HOST_OTHER, 18081), /^ERR ECONNREFUSED$/);
    assert.match(talk(world.host, 'tcp', HOST_OTHER, 18081), /^ERR ECONNREFUSED$/);
    assert.match(talk(world.host, 'tcp', '127.0.0.1', 18081), /^ERR ECONNREFUSED$/);
  });

  it('(h) a UDP mapping works from outside, from the host and from another pod', () => {
    assert.equal(talk(outside, 'udp', HOST_OUT, 18053), OUTSIDE);
    assert.equal(talk(world.host, 'udp', '127.0.0.1', 18053), GATEWAY);
    assert.equal(talk(podB, 'udp', HOST_OUT, 18053), GATEWAY);
  });

  it('only traffic to local addresses is DNATed: the outside host on the hostPort is not hijacked', () => {
    // A pod connecting to another host's port 18080 must reach that host, not pod A.
    assert.match(talk(podB, 'tcp', OUTSIDE, 18080), /^ERR ECONNREFUSED$/);
  });

  it('(g) a hostPort held by pod A makes ADD fail with 101 naming A, and leaves nothing behind', () => {
    const podC = world.addPod();
    const linksBefore = ipJson(world.host, 'link', 'show').map((l: { ifname: string }) => l.ifname).sort();
    const r = add(ids.C, podC, [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }]);
    assert.equal(r.status, 1);
    assert.equal(r.json.code, 101, r.stdout);
    assert.match(r.json.msg, new RegExp(`18080/tcp.*${ids.A}/eth0`));
    assert.deepEqual(ipJson(world.host, 'link', 'show').map((l: { ifname: string }) => l.ifname).sort(), linksBefore);
    assert.deepEqual(ipJson(podC, 'link', 'show').map((l: { ifname: string }) => l.ifname), ['lo']);
    assert.ok(!tableText(world, table).includes(ids.C), 'no element mentions pod C');
    assert.deepEqual(listAttachments(world.dataDir).map((r) => r.containerID).sort(), [ids.A, ids.B].sort());
    // Pod A's mapping still works.
    assert.equal(talk(outside, 'tcp', HOST_OUT, 18080), OUTSIDE);
  });

  it('(f) after DEL nothing forwards to pod A and no element mentions it', () => {
    assert.ok(tableText(world, table).includes(ids.A));
    const r = world.call({ command: 'DEL', containerId: ids.A, netns: world.netnsPath(podA), ifname: 'eth0' }, conf(A_MAPPINGS));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const text = tableText(world, table);
    assert.ok(text, 'the table stays for the other pods');
    assert.ok(!text.includes(ids.A), 'no element mentions pod A');
    assert.ok(!text.includes(addrA + '"'), 'no element holds pod A\'s address');
    assert.ok(text.includes(ids.B), 'pod B keeps its entries');
    assert.match(talk(outside, 'tcp', HOST_OUT, 18080), /^ERR ECONNREFUSED$/);
    assert.match(talk(outside, 'tcp', HOST_OUT, 18081), /^ERR ECONNREFUSED$/);
    assert.match(talk(world.host, 'tcp', '127.0.0.1', 18080), /^ERR ECONNREFUSED$/);
    // The datagram reached the host itself, which has nothing on 18053: not DNATed any more.
    assert.equal(talk(outside, 'udp', HOST_OUT, 18053), 'ERR ECONNREFUSED');
    // Pod B still goes out.
    assert.equal(talk(podB, 'tcp', OUTSIDE, OUT_TCP), HOST_OUT);
    // A second DEL is fine.
    const again = world.call({ command: 'DEL', containerId: ids.A, netns: world.netnsPath(podA), ifname: 'eth0' }, conf(A_MAPPINGS));
    assert.equal(again.status, 0, again.stdout);
  });
});

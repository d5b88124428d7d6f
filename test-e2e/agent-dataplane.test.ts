// The agent's reconciler against the real kernel and nft, without an API server: Node objects
// are handed over as data (test-e2e/agent-driver.ts) and the driver runs inside a throwaway
// netns that plays the node. Checks Pier-protocol routes (host-gw and VXLAN), the vxlan device
// with its FDB and neighbour entries, foreign routes that must survive, stale ones that must go,
// the masquerade table, the conflist, the ready file, idempotence, and batching at 500 nodes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { nodeObject, type NodeSpec } from '../src/agent/testdata-nodes.ts';
import { vtepMacOf } from '../src/agent/vtep.ts';
import { Cleanup, ipJson, run, uniquePrefix } from './helpers.ts';

const p = uniquePrefix();
const cleanup = new Cleanup();
const N = `${p}-node`;
const B = `${p}-b`;
const dir = mkdtempSync(join(tmpdir(), `${p}-agent-`));
const DRIVER = new URL('./agent-driver.ts', import.meta.url).pathname;
const argv = [
  '--node-name', 'a', '--cluster-cidr', '10.244.0.0/16,fd00:10:244::/56', '--metrics-addr', 'off',
  '--cni-conf-dir', join(dir, 'net.d'), '--data-dir', join(dir, 'data'), '--run-dir', join(dir, 'run'),
];

interface PassOut {
  pass: number;
  ms: number;
  logs: Array<{ level: string; msg: string; [k: string]: unknown }>;
  batches: number;
  requests: number;
  state: { ready: boolean; routes: unknown[]; refused: Array<{ node: string; reason: string }>; problems: unknown[] };
}

/** Runs the driver in the node's netns over `passes`; returns each pass's report. */
function drive(passes: NodeSpec[][], extraArgv: string[] = []): PassOut[] {
  const file = join(dir, `input-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify({ argv: [...argv, ...extraArgv], passes: passes.map((ns) => ns.map(nodeObject)) }));
  const r = spawnSync('ip', ['netns', 'exec', N, process.execPath, '--import', 'tsx', DRIVER, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as PassOut);
}

const A: NodeSpec = { name: 'a', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'], internalIPs: ['203.0.113.1', 'fd00:203::1'], created: '2025-01-01T00:00:00Z' };
const Bn: NodeSpec = { name: 'b', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], internalIPs: ['203.0.113.2', 'fd00:203::2'], vtepMac: vtepMacOf('b') };
const C: NodeSpec = { name: 'c', podCIDRs: ['10.244.2.0/24'], internalIPs: ['198.51.100.3'], vtepMac: '0e:00:00:00:00:0c' };
const D: NodeSpec = { name: 'd', podCIDRs: ['10.244.9.0/24'], internalIPs: ['203.0.113.9'] };
const E: NodeSpec = { name: 'e', podCIDRs: ['10.99.0.0/24'], internalIPs: ['203.0.113.10'] };
const PROTO = '173';
const routes = (family = '-4') => ipJson(N, family, 'route', 'show', 'proto', PROTO) as Array<{ dst: string; gateway: string; dev: string; flags: string[] }>;
const brief = (family = '-4') => routes(family).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}${r.flags.includes('onlink') ? ' onlink' : ''}`).sort();

before(() => {
  for (const n of [N, B]) cleanup.addNetns(n);
  cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  run('ip', ['netns', 'add', N]);
  run('ip', ['netns', 'add', B]);
  run('ip', ['-n', N, 'link', 'add', 'under0', 'type', 'veth', 'peer', 'name', 'under0', 'netns', B]);
  run('ip', ['-n', N, 'link', 'set', 'lo', 'up']);
  run('ip', ['-n', N, 'addr', 'add', '203.0.113.1/24', 'dev', 'under0']);
  run('ip', ['-n', N, 'addr', 'add', 'fd00:203::1/64', 'dev', 'under0', 'nodad']);
  run('ip', ['-n', N, 'link', 'set', 'under0', 'mtu', '1500', 'up']);
  run('ip', ['-n', B, 'link', 'set', 'under0', 'up']);
  // Somebody else's routes: one at a destination a peer will want, one unrelated; and a stale
  // Pier route left by a node deleted while the agent was away.
  run('ip', ['-n', N, 'route', 'add', '10.244.9.0/24', 'via', '203.0.113.99', 'proto', 'static']);
  run('ip', ['-n', N, 'route', 'add', '10.50.0.0/16', 'via', '203.0.113.50']);
  run('ip', ['-n', N, 'route', 'add', '10.244.77.0/24', 'via', '203.0.113.77', 'proto', PROTO]);
});
after(() => cleanup.runAll());

describe('reconciling Node objects into the kernel', () => {
  let first: PassOut[];

  test('first pass: host-gw and VXLAN routes, overlay entries, foreign routes untouched, stale route gone', () => {
    first = drive([[A, Bn, C, D, E], [A, Bn, C, D, E]]);
    const [p0] = first;
    assert.deepEqual(brief(), [
      '10.244.1.0/24 via 203.0.113.2 dev under0',
      '10.244.2.0/24 via 10.244.2.0 dev pier.vxlan onlink',
    ]);
    assert.deepEqual(brief('-6'), ['fd00:10:244:1::/64 via fd00:203::2 dev under0']);
    const [foreign] = ipJson(N, 'route', 'show', '10.244.9.0/24');
    assert.deepEqual([foreign.gateway, foreign.protocol], ['203.0.113.99', 'static']);
    assert.equal(ipJson(N, 'route', 'show', '10.50.0.0/16')[0].gateway, '203.0.113.50');
    assert.equal(ipJson(N, 'route', 'show', '10.244.77.0/24').length, 0, 'the stale Pier route is removed');
    assert.ok(p0.logs.some((l) => l.level === 'warn' && /not Pier's; left alone/.test(l.msg) && String(l.op).includes('10.244.9.0/24')));
    assert.ok(p0.logs.some((l) => l.level === 'warn' && l.msg === 'node refused' && l.node === 'e' && /outside --cluster-cidr/.test(String(l.reason))));
    assert.deepEqual(p0.state.refused, [{ node: 'e', reason: 'podCIDR 10.99.0.0/24 lies outside --cluster-cidr 10.244.0.0/16,fd00:10:244::/56' }]);
    assert.equal(p0.batches, 1, 'one datagram for the whole first pass');
  });

  test('the vxlan device, its VTEP addresses, FDB and neighbour entries', () => {
    const [l] = ipJson(N, '-d', 'link', 'show', 'pier.vxlan');
    assert.deepEqual([l.linkinfo.info_data.id, l.linkinfo.info_data.port, l.linkinfo.info_data.learning, l.address, l.mtu], [1, 8473, false, vtepMacOf('a'), 1450]);
    assert.ok(l.flags.includes('UP'));
    const addrs = (ipJson(N, 'addr', 'show', 'dev', 'pier.vxlan')[0].addr_info as Array<{ local: string; prefixlen: number; scope: string }>).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
    assert.deepEqual(addrs.sort(), ['10.244.0.0/32', 'fd00:10:244::/128']);
    const fdb = JSON.parse(run('ip', ['netns', 'exec', N, 'bridge', '-j', 'fdb', 'show', 'dev', 'pier.vxlan'])) as Array<{ mac: string; dst?: string }>;
    assert.deepEqual(fdb.filter((e) => e.dst).map((e) => `${e.mac} ${e.dst}`), ['0e:00:00:00:00:0c 198.51.100.3']);
    const neigh = ipJson(N, 'neigh', 'show', 'dev', 'pier.vxlan') as Array<{ dst: string; lladdr: string; state: string[] }>;
    assert.deepEqual(neigh.filter((n) => n.state.includes('PERMANENT')).map((n) => `${n.dst} ${n.lladdr}`), ['10.244.2.0 0e:00:00:00:00:0c']);
  });

  test('masquerade table, conflist, ready file, forwarding', () => {
    const table = run('ip', ['netns', 'exec', N, 'nft', 'list', 'table', 'inet', 'pier_cluster']);
    // What nft itself prints for the table the agent made.
    assert.equal(table, [
      'table inet pier_cluster {',
      '\tset cluster4 {',
      '\t\ttype ipv4_addr',
      '\t\tflags interval',
      '\t\telements = { 10.244.0.0/16 }',
      '\t}',
      '',
      '\tset cluster6 {',
      '\t\ttype ipv6_addr',
      '\t\tflags interval',
      '\t\telements = { fd00:10:244::/56 }',
      '\t}',
      '',
      '\tchain postrouting {',
      '\t\ttype nat hook postrouting priority srcnat; policy accept;',
      '\t\tip saddr 10.244.0.0/24 ip daddr != @cluster4 ip daddr != 224.0.0.0/4 masquerade',
      '\t\tip6 saddr fd00:10:244::/64 ip6 daddr != @cluster6 ip6 daddr != ff00::/8 masquerade',
      '\t}',
      '}',
      '',
    ].join('\n'));
    const conf = JSON.parse(readFileSync(join(dir, 'net.d', '10-pier.conflist'), 'utf8'));
    assert.deepEqual(conf.plugins[0].ipam.ranges, [[{ subnet: '10.244.0.0/24' }], [{ subnet: 'fd00:10:244::/64' }]]);
    assert.equal(conf.plugins[0].mtu, 1450, 'underlay MTU less the VXLAN overhead');
    assert.equal(conf.plugins[0].ipMasq, false);
    assert.ok(existsSync(join(dir, 'run', 'ready')));
    assert.equal(run('ip', ['netns', 'exec', N, 'sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1');
    assert.equal(run('ip', ['netns', 'exec', N, 'sysctl', '-n', 'net.ipv6.conf.all.forwarding']).trim(), '1');
  });

  test('a second pass over the same nodes changes nothing (a restart is silent)', () => {
    const [, p1] = first;
    // The one request is the route the foreign one blocks, tried again each pass (it may be
    // gone by now), and refused again without a second warning.
    assert.equal(p1.requests, 1);
    assert.ok(!p1.logs.some((l) => l.level === 'warn' || /conflist written|masquerade table set up|vxlan device/.test(l.msg)), JSON.stringify(p1.logs));
    // A fresh process (an agent restart) sends nothing else for the kernel either.
    const [again] = drive([[A, Bn, C, D, E]]);
    assert.equal(again.requests, 1);
  });

  test('changes: a node deleted, an InternalIP moved, a node added', () => {
    const moved = { ...Bn, internalIPs: ['203.0.113.22', 'fd00:203::2'] };
    const F: NodeSpec = { name: 'f', podCIDRs: ['10.244.5.0/24'], internalIPs: ['198.51.100.5'], vtepMac: '0e:00:00:00:00:0f' };
    const [p] = drive([[A, moved, D, E, F]]);
    assert.deepEqual(brief(), [
      '10.244.1.0/24 via 203.0.113.22 dev under0',
      '10.244.5.0/24 via 10.244.5.0 dev pier.vxlan onlink',
    ]);
    const fdb = JSON.parse(run('ip', ['netns', 'exec', N, 'bridge', '-j', 'fdb', 'show', 'dev', 'pier.vxlan'])) as Array<{ mac: string; dst?: string }>;
    assert.deepEqual(fdb.filter((e) => e.dst).map((e) => `${e.mac} ${e.dst}`), ['0e:00:00:00:00:0f 198.51.100.5']);
    const kernel = p.logs.find((l) => l.msg === 'kernel updated')!;
    assert.equal(kernel.route_replace, 1);
    assert.equal(kernel.route_delete, 1);
    assert.equal(ipJson(N, 'route', 'show', '10.244.9.0/24')[0].protocol, 'static', 'still not touched');
  });

  test('500 nodes converge in a few netlink batches; then all but this node go, and only Pier routes with them', () => {
    const many: NodeSpec[] = [{ ...A }];
    for (let i = 0; i < 500; i++) {
      const direct = i < 250;
      many.push({
        name: `n${i}`,
        podCIDRs: [`10.244.${4 + (i >> 2)}.${(i & 3) * 64}/26`],
        internalIPs: [direct ? `203.0.113.${i + 2 >= 250 ? 1 : i + 3}` : `198.51.100.${i - 249}`],
        vtepMac: `0e:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`,
      });
    }
    // 203.0.113.1 is this node's own address: those few are not directly reachable, so VXLAN.
    const [big, quiet] = drive([many, many]);
    assert.equal(routes().length, 500);
    assert.ok(big.batches <= 2, `batches: ${big.batches}`);
    assert.equal(quiet.requests, 0);
    console.log(`500 nodes: ${big.requests} netlink requests in ${big.batches} batch(es), pass ${big.ms.toFixed(0)} ms; unchanged pass ${quiet.ms.toFixed(0)} ms`);
    const [empty] = drive([[A]]);
    assert.deepEqual(routes(), []);
    assert.ok(empty.batches <= 2);
    assert.equal(ipJson(N, 'route', 'show', '10.244.9.0/24')[0].protocol, 'static');
    assert.equal(ipJson(N, 'route', 'show', '10.50.0.0/16').length, 1);
  });

  test('an IPv6-only node: the vxlan device is bound to its IPv6 address, FDB entries point at IPv6 underlay addresses', () => {
    const a6: NodeSpec = { name: 'a', podCIDRs: ['fd00:10:244::/64'], internalIPs: ['fd00:203::1'], created: '2025-01-01T00:00:00Z' };
    const far: NodeSpec = { name: 'far', podCIDRs: ['fd00:10:244:7::/64'], internalIPs: ['fd00:198::7'], vtepMac: '0e:00:00:00:00:77' };
    const [p] = drive([[a6, far]], ['--cluster-cidr', 'fd00:10:244::/56']);
    assert.ok(p.logs.some((l) => l.msg === 'vxlan device recreated'), JSON.stringify(p.logs));
    const [l] = ipJson(N, '-d', 'link', 'show', 'pier.vxlan');
    assert.equal(l.linkinfo.info_data.local6, 'fd00:203::1');
    assert.equal(l.mtu, 1430, 'underlay MTU less 70 over IPv6');
    const fdb = JSON.parse(run('ip', ['netns', 'exec', N, 'bridge', '-j', 'fdb', 'show', 'dev', 'pier.vxlan'])) as Array<{ mac: string; dst?: string }>;
    assert.deepEqual(fdb.filter((e) => e.dst).map((e) => `${e.mac} ${e.dst}`), ['0e:00:00:00:00:77 fd00:198::7']);
    assert.deepEqual(brief('-6'), ['fd00:10:244:7::/64 via fd00:10:244:7:: dev pier.vxlan onlink']);
  });
});

// `pier agent` on a real kube-apiserver (etcd, kube-controller-manager allocating podCIDRs; see
// test-e2e/kube), with simulated nodes: each a netns running dist/pier agent under the
// ServiceAccount of conf/pier-agent-rbac.yaml, pods wired by dist/pier from the conflist its
// agent wrote. Nodes n1 and n2 share segment 1 (host-gw between them), n3 sits on segment 2
// behind a router (VXLAN to it); the API server is on segment 1, the outside host on segment 3.
// Dual stack. The tests build on each other, in order.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from './kube/control-plane.ts';
import { ensureBuilt, PIER, ROOT } from './cni-harness.ts';
import { ask, ClusterWorld, CP_ADDR, OUTSIDE4, OUTSIDE6, startEcho, startFlow, waitFor, type Pod, type SimNode } from './agent-cluster-world.ts';
import { ipJson, run, uniquePrefix } from './helpers.ts';
import { vtepMacOf } from '../src/agent/vtep.ts';
import { KubeConfig } from '@kubernetes/client-node';

const CLUSTER = '10.244.0.0/16,fd00:10:244::/56';
const RBAC = join(ROOT, 'conf/pier-agent-rbac.yaml');
const PORT = 7000;
let world: ClusterWorld;
let cp: ControlPlane;
let kubeconfig = '';
const pods = new Map<string, Pod>();

const n = (name: string) => world.nodes.get(name)!;
const kubectl = (args: string[], input?: string) => cp.kubectl(args, input === undefined ? {} : { input });
const nodeJson = (name: string) => JSON.parse(kubectl(['get', 'node', name, '-o', 'json']));

/** A Node object as a kubelet would register it: created, then its addresses set on status. */
function createNode(name: string, ips: string[], spec: Record<string, unknown> = {}): void {
  kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec }));
  setAddresses(name, ips);
}

function setAddresses(name: string, ips: string[]): void {
  const addresses = [...ips.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: name }];
  kubectl(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { addresses } })]);
}

/** What each node's dataplane looks like: routes of both families, the overlay's entries. */
function dataplaneOf(node: SimNode) {
  const fdb = world.exec(node.netns, 'bridge', ['-j', 'fdb', 'show', 'dev', 'pier.vxlan']);
  return {
    routes: [...world.routesOf(node), ...world.routesOf(node, '-6')],
    fdb: fdb.status === 0 ? (JSON.parse(fdb.stdout) as Array<{ mac: string; dst?: string }>).filter((e) => e.dst).map((e) => `${e.mac} ${e.dst}`).sort() : [],
    neigh: (ipJson(node.netns, 'neigh', 'show', 'nud', 'permanent') as Array<{ dst: string; lladdr: string }>).map((x) => `${x.dst} ${x.lladdr}`).sort(),
    conflist: readFileSync(join(node.confDir, '10-pier.conflist'), 'utf8'),
    nft: run('ip', ['netns', 'exec', node.netns, 'nft', 'list', 'table', 'inet', 'pier_cluster']),
  };
}

/** podCIDRs the controller-manager gave `name`. */
function podCidrsOf(name: string): string[] {
  return (nodeJson(name).spec.podCIDRs as string[] | undefined) ?? [];
}

/** Every node has both podCIDRs, its conflist, and routes to every other one's podCIDRs. */
async function converged(names: string[], timeoutMs = 60_000): Promise<void> {
  const missing = () => {
    const cidrs = new Map(names.map((x) => [x, podCidrsOf(x)]));
    const out: string[] = [];
    for (const [x, c] of cidrs) if (c.length !== 2) out.push(`${x} has podCIDRs [${c.join(', ')}]`);
    if (out.length) return out;
    for (const a of names) {
      const routes = [...world.routesOf(n(a)), ...world.routesOf(n(a), '-6')].map((r) => r.split(' ')[0]);
      if (world.conflistOf(n(a)) === undefined) out.push(`${a} has no conflist`);
      for (const b of names.filter((y) => y !== a)) for (const c of cidrs.get(b)!) if (!routes.includes(c)) out.push(`${a} has no route to ${b}'s ${c}`);
    }
    return out;
  };
  try {
    await waitFor(`routes between ${names.join(', ')}`, () => missing().length === 0, timeoutMs, 250);
  } catch (err) {
    // What was missing, and what each agent said last: a flake here must be readable from CI's log.
    const tails = names.map((x) => `${x}: ${world.logOf(n(x)).slice(-6).map((l) => JSON.stringify(l)).join('\n    ')}`);
    throw new Error(`${(err as Error).message}\nmissing: ${missing().join('; ')}\nlast log lines:\n  ${tails.join('\n  ')}`);
  }
}

before(async () => {
  ensureBuilt();
  world = new ClusterWorld(uniquePrefix());
  cp = await startControlPlane({ name: `${world.prefix}-agent`, netns: world.cp, bindAddress: CP_ADDR, clusterCidr: CLUSTER, nodeCidrMaskSize: { v4: 24, v6: 64 } });
  world.cleanup.add(() => void cp.stop());
  kubeconfig = await cp.serviceAccountKubeconfig('kube-system', 'pier-agent');
  world.addNode('n1', 1, '203.0.113.11', 'fd00:203:1::11');
  world.addNode('n2', 1, '203.0.113.12', 'fd00:203:1::12');
  world.addNode('n3', 2, '203.0.113.141', 'fd00:203:2::141');
  for (const node of ['n1', 'n2', 'n3']) createNode(node, [n(node).ip4, n(node).ip6]);
});
after(async () => {
  await cp?.stop();
  world?.cleanup.runAll();
});

describe('pier agent on a real API server', () => {
  test('without RBAC the agents retry and say what is missing; once it is applied they set their nodes up', async () => {
    for (const node of ['n1', 'n2', 'n3']) world.startAgent(n(node), kubeconfig, ['--cluster-cidr', CLUSTER]);
    await waitFor('a 403 hint in every agent log', () => ['n1', 'n2', 'n3'].every((x) => world.logOf(n(x)).some((l) => l.msg === 'API call failed; retrying' && /403/.test(String(l.error)) && /RBAC/.test(String(l.hint)))), 60_000);
    assert.ok(['n1', 'n2', 'n3'].every((x) => n(x).agent!.exitCode === null), 'still running');
    kubectl(['apply', '-f', RBAC]);
    await converged(['n1', 'n2', 'n3'], 120_000);
    for (const node of ['n1', 'n2', 'n3']) {
      const list = world.conflistOf(n(node))!;
      assert.deepEqual(list.plugins[0].ipam.ranges.map((r: Array<{ subnet: string }>) => r[0].subnet), podCidrsOf(node));
      assert.equal(list.plugins[0].ipMasq, false);
    }
  });

  test('host-gw on the shared segment, VXLAN across the router; VTEP MAC annotations; NetworkUnavailable=False', async () => {
    const [c1, c2, c3] = ['n1', 'n2', 'n3'].map(podCidrsOf);
    assert.ok(world.routesOf(n('n1')).includes(`${c2[0]} via 203.0.113.12 dev eth0`), world.routesOf(n('n1')).join('\n'));
    assert.ok(world.routesOf(n('n1'), '-6').includes(`${c2[1]} via fd00:203:1::12 dev eth0`));
    assert.ok(world.routesOf(n('n1')).includes(`${c3[0]} via ${c3[0].split('/')[0]} dev pier.vxlan`));
    assert.ok(world.routesOf(n('n3')).includes(`${c1[0]} via ${c1[0].split('/')[0]} dev pier.vxlan`));
    assert.ok(world.routesOf(n('n3'), '-6').includes(`${c2[1]} via ${c2[1].split('/')[0]} dev pier.vxlan`));
    assert.deepEqual(dataplaneOf(n('n1')).fdb, [`${vtepMacOf('n3')} 203.0.113.141`]);
    await waitFor('annotations and conditions', () => ['n1', 'n2', 'n3'].every((x) => {
      const o = nodeJson(x);
      const cond = (o.status.conditions ?? []).find((c: { type: string }) => c.type === 'NetworkUnavailable');
      return o.metadata.annotations?.['pier.dev/vtep-mac'] === vtepMacOf(x) && cond?.status === 'False' && cond.reason === 'PierRoutesCreated';
    }), 60_000);
  });

  test('after its list and first pass, each agent gives memory back (a full collection and malloc_trim)', async () => {
    for (const x of ['n1', 'n2', 'n3']) {
      const lines = await waitFor(`memory given back on ${x}`, () => {
        const log = world.logOf(n(x));
        return log.some((l) => l.msg === 'memory given back') && log;
      }, 60_000);
      const listed = lines.findIndex((l) => l.msg === 'nodes listed');
      const given = lines.findIndex((l) => l.msg === 'memory given back');
      assert.ok(listed >= 0 && given > listed, `${x}: nodes listed at ${listed}, memory given back at ${given}`);
      const g = lines[given];
      assert.equal(g.reason, 'list');
      assert.ok(typeof g.rssMbBefore === 'number' && typeof g.rssMbAfter === 'number' && g.rssMbAfter > 0, JSON.stringify(g));
    }
  });

  test('pods on n1 reach pods on n2 and n3 (IPv4 and IPv6), and each receiver sees the sender\'s pod IP', async () => {
    for (const node of ['n1', 'n2', 'n3']) pods.set(node, world.addPod(n(node)));
    for (const node of ['n2', 'n3']) await startEcho(world, pods.get(node)!.netns, PORT);
    const a = pods.get('n1')!;
    for (const to of ['n2', 'n3']) {
      const b = pods.get(to)!;
      assert.equal(ask(a.netns, b.ip4, PORT), a.ip4, `IPv4 to ${to}`);
      assert.equal(ask(a.netns, b.ip6!, PORT), a.ip6, `IPv6 to ${to}`);
    }
  });

  test('a pod reaches an outside host and is seen there as its node\'s address', async () => {
    await startEcho(world, world.outside, PORT);
    const a = pods.get('n3')!;
    assert.equal(ask(a.netns, OUTSIDE4, PORT), n('n3').ip4);
    assert.equal(ask(a.netns, OUTSIDE6, PORT), n('n3').ip6);
  });

  test('hostPort from outside, hairpin and 127.0.0.1:hostPort work with the conflist the agent wrote', async () => {
    const web = world.addPod(n('n2'), { portMappings: [{ hostPort: 17000, containerPort: PORT, protocol: 'tcp' }] });
    await startEcho(world, web.netns, PORT);
    // From outside: DNAT to the pod, the caller's address kept.
    assert.equal(ask(world.outside, n('n2').ip4, 17000), OUTSIDE4);
    // Hairpin: the pod through its own node's hostPort, seen as from the bridge (masqueraded), so
    // the answer comes back through the host.
    const gateway = podCidrsOf('n2')[0].replace(/\.0\/24$/, '.1');
    assert.equal(ask(web.netns, n('n2').ip4, 17000), gateway);
    // 127.0.0.1:hostPort on the node itself (route_localnet, masqueraded to the bridge address).
    assert.equal(ask(n('n2').netns, '127.0.0.1', 17000), gateway);
    // A pod on another node through n2's hostPort: n2's address is not a pod's, so it is masqueraded.
    assert.equal(ask(pods.get('n1')!.netns, n('n2').ip4, 17000), n('n1').ip4);
  });

  test('pier status and pier doctor on a node show the agent\'s view', () => {
    const status = world.exec(n('n1').netns, PIER, ['status', '--run-dir', n('n1').runDir]);
    assert.equal(status.status, 0, status.stdout + status.stderr);
    assert.match(status.stdout, /agent: node n1, pid \d+ running/);
    assert.match(status.stdout, new RegExp(`api: ${cp.apiServerUrl.replace(/[.[\]]/g, '\\$&')} reachable`));
    assert.match(status.stdout, /routes: 4 of 4 present/);
    assert.match(status.stdout, /ok +\S+ via 203\.0\.113\.12 dev eth0 \(n2\)/);
    assert.match(status.stdout, /: ready\n$/);
    // n1 reaches n3 over VXLAN: its VTEP address (the podCIDR's network address, a /128 kernel
    // route for IPv6) is no clash with its own pod subnet.
    const healthy = world.exec(n('n1').netns, PIER, ['doctor', '--run-dir', n('n1').runDir, '--conf-dir', n('n1').confDir]);
    assert.doesNotMatch(healthy.stdout, /overlaps host route/);
    assert.match(healthy.stdout, /ok {4}network \S+: pod subnet fd00:10:244:\S+ clashes with no host route/);
    // A route gone by hand shows as missing (and the agent puts it back at its next pass: it is
    // stopped meanwhile, so that its resync cannot do that between the two reads).
    const c2 = podCidrsOf('n2')[0];
    process.kill(n('n1').agent!.pid!, 'SIGSTOP');
    try {
      run('ip', ['-n', n('n1').netns, 'route', 'del', c2]);
      const missing = world.exec(n('n1').netns, PIER, ['status', '--run-dir', n('n1').runDir]);
      assert.equal(missing.status, 1);
      assert.match(missing.stdout, new RegExp(`MISSING ${c2.replace(/[./]/g, '\\$&')} via 203\\.0\\.113\\.12`));
      const doctor = world.exec(n('n1').netns, PIER, ['doctor', '--run-dir', n('n1').runDir, '--conf-dir', n('n1').confDir]);
      assert.match(doctor.stdout, /fail {2}1 route\(s\) to other nodes' pods missing/);
      assert.match(doctor.stdout, /ok {4}pier agent \(pid \d+\) running/);
    } finally {
      process.kill(n('n1').agent!.pid!, 'SIGCONT');
    }
  });

  test('the agent puts a removed route back within its resync interval', async () => {
    const c2 = podCidrsOf('n2')[0];
    await waitFor('the route back', () => world.routesOf(n('n1')).some((r) => r.startsWith(c2)), 60_000, 250);
  });

  test('a node that joins later (its agent configured as in a DaemonSet pod) gets routes both ways, and traffic flows', async () => {
    world.addNode('n4', 1, '203.0.113.13', 'fd00:203:1::13');
    createNode('n4', ['203.0.113.13', 'fd00:203:1::13']);
    // In-cluster config: the service account token and CA at their path, the API server from
    // KUBERNETES_SERVICE_HOST/PORT, the node name from NODE_NAME.
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const url = new URL(cp.apiServerUrl);
    world.startAgentInCluster(n('n4'), { token: kc.getCurrentUser()!.token!, caFile: cp.caFile, host: url.hostname, port: url.port }, ['--cluster-cidr', CLUSTER]);
    await converged(['n1', 'n2', 'n3', 'n4']);
    await waitFor('n4\'s conflist', () => world.conflistOf(n('n4')), 30_000);
    pods.set('n4', world.addPod(n('n4')));
    await startEcho(world, pods.get('n4')!.netns, PORT);
    assert.equal(ask(pods.get('n3')!.netns, pods.get('n4')!.ip4, PORT), pods.get('n3')!.ip4);
    assert.equal(ask(pods.get('n4')!.netns, pods.get('n2')!.ip4, PORT), pods.get('n4')!.ip4);
  });

  test('an InternalIP change moves the route, and traffic follows', async () => {
    // The new address is a secondary one: let it take over when the old primary goes.
    run('ip', ['netns', 'exec', n('n4').netns, 'sysctl', '-qw', 'net.ipv4.conf.eth0.promote_secondaries=1']);
    run('ip', ['-n', n('n4').netns, 'addr', 'add', '203.0.113.14/25', 'dev', 'eth0']);
    setAddresses('n4', ['203.0.113.14', 'fd00:203:1::13']);
    const c4 = podCidrsOf('n4')[0];
    await waitFor('the moved route on n1 and n2', () => ['n1', 'n2'].every((x) => world.routesOf(n(x)).includes(`${c4} via 203.0.113.14 dev eth0`)), 30_000, 100);
    // The old address is gone from n4: only the new route can carry the answer.
    run('ip', ['-n', n('n4').netns, 'addr', 'del', '203.0.113.13/25', 'dev', 'eth0']);
    assert.equal(ask(pods.get('n1')!.netns, pods.get('n4')!.ip4, PORT), pods.get('n1')!.ip4);
  });

  test('SIGKILL and restart: no datagram of an established flow is lost, and the state is reconciled', async () => {
    const a = pods.get('n1')!;
    const c = pods.get('n3')!;
    const flow = await startFlow(world, a.netns, c.netns, c.ip4, 7001);
    await new Promise((r) => setTimeout(r, 1000));
    const before = [dataplaneOf(n('n1')), dataplaneOf(n('n3'))];
    for (const x of ['n1', 'n3']) assert.equal(await world.stopAgent(n(x), 'SIGKILL'), null);
    // While they are down: a stale Pier route appears on n1, a wanted one vanishes on n3.
    run('ip', ['-n', n('n1').netns, 'route', 'add', '10.244.250.0/24', 'via', '203.0.113.12', 'proto', '173']);
    const c1 = podCidrsOf('n1')[0];
    run('ip', ['-n', n('n3').netns, 'route', 'del', c1]);
    await new Promise((r) => setTimeout(r, 1000));
    for (const x of ['n1', 'n3']) world.startAgent(n(x), kubeconfig, ['--cluster-cidr', CLUSTER]);
    await waitFor('reconciled', () => !world.routesOf(n('n1')).some((r) => r.startsWith('10.244.250.0/24')) && world.routesOf(n('n3')).some((r) => r.startsWith(c1)), 60_000, 100);
    await new Promise((r) => setTimeout(r, 1000));
    const result = await flow.stop();
    assert.ok(result.sent > 100, JSON.stringify(result));
    assert.equal(result.received, result.sent, `lost ${result.sent - result.received} of ${result.sent}`);
    assert.deepEqual([dataplaneOf(n('n1')), dataplaneOf(n('n3'))], before, 'the same dataplane after the restart');
  });

  test('API server stopped for 30 s: nothing is removed; changes made meanwhile are caught up with afterwards', async () => {
    const names = ['n1', 'n2', 'n3', 'n4'];
    const before = names.map((x) => dataplaneOf(n(x)));
    // From the nodes' side the API is gone for the whole test: first the path (so that they miss
    // the changes below), then the server itself.
    for (const x of names) {
      run('ip', ['netns', 'exec', n(x).netns, 'nft', 'add', 'table', 'inet', 'test_block']);
      run('ip', ['netns', 'exec', n(x).netns, 'nft', 'add', 'chain', 'inet', 'test_block', 'out', '{ type filter hook output priority 0; }']);
      run('ip', ['netns', 'exec', n(x).netns, 'nft', 'add', 'rule', 'inet', 'test_block', 'out', 'ip', 'daddr', CP_ADDR, 'reject']);
    }
    await cp.stopApiServer();
    await new Promise((r) => setTimeout(r, 30_000));
    assert.deepEqual(names.map((x) => dataplaneOf(n(x))), before, 'nothing changed during the outage');
    assert.equal(ask(pods.get('n1')!.netns, pods.get('n3')!.ip4, PORT), pods.get('n1')!.ip4, 'traffic still flows');
    await cp.startApiServer();
    // Changes the agents cannot see yet: n4 leaves the cluster (its agent stops first).
    await world.stopAgent(n('n4'));
    const c4 = podCidrsOf('n4');
    kubectl(['delete', 'node', 'n4']);
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(names.slice(0, 3).map((x) => dataplaneOf(n(x)).routes), before.slice(0, 3).map((d) => d.routes), 'still nothing removed');
    const removedAt = Date.now();
    for (const x of names) run('ip', ['netns', 'exec', n(x).netns, 'nft', 'delete', 'table', 'inet', 'test_block']);
    await waitFor('n4\'s routes gone on every node', () => ['n1', 'n2', 'n3'].every((x) => ![...world.routesOf(n(x)), ...world.routesOf(n(x), '-6')].some((r) => c4.some((c) => r.startsWith(c)))), 60_000, 100);
    console.log(`deleted node's routes gone on every node ${Date.now() - removedAt} ms after the API came back in reach`);
    assert.deepEqual(dataplaneOf(n('n1')).fdb, [`${vtepMacOf('n3')} 203.0.113.141`]);
  });

  test('a deleted node\'s routes are gone on every node within seconds', async () => {
    world.addNode('n5', 1, '203.0.113.15', 'fd00:203:1::15');
    createNode('n5', ['203.0.113.15', 'fd00:203:1::15']);
    world.startAgent(n('n5'), kubeconfig, ['--cluster-cidr', CLUSTER]);
    // Right after the outage test the controller-manager's informers may still be in their own
    // backoff (client-go's, up to 30 s): its podCIDRs get a deadline of their own, so that the
    // wait below measures the agents only. What this test times is the deletion.
    await waitFor('the controller-manager giving n5 its podCIDRs', () => podCidrsOf('n5').length === 2, 180_000, 500);
    await converged(['n1', 'n2', 'n3', 'n5']);
    const c5 = podCidrsOf('n5');
    const t = Date.now();
    kubectl(['delete', 'node', 'n5']);
    await waitFor('n5\'s routes gone', () => ['n1', 'n2', 'n3'].every((x) => ![...world.routesOf(n(x)), ...world.routesOf(n(x), '-6')].some((r) => c5.some((c) => r.startsWith(c)))), 30_000, 50);
    console.log(`deleted node's routes gone on every node after ${Date.now() - t} ms`);
  });

  test('hostile Node objects are refused with a log line naming each, and change nothing', async () => {
    const names = ['n1', 'n2', 'n3'];
    const before = names.map((x) => dataplaneOf(n(x)));
    const c1 = podCidrsOf('n1');
    const hostile: Array<[string, string[], Record<string, unknown>, RegExp]> = [
      ['h-overlap', ['203.0.113.60'], { podCIDR: c1[0], podCIDRs: [c1[0]] }, /overlaps node n1's/],
      ['h-covers-node', ['203.0.113.61'], { podCIDR: '203.0.113.0/28', podCIDRs: ['203.0.113.0/28'] }, /outside --cluster-cidr|covers node/],
      ['h-outside', ['203.0.113.62'], { podCIDR: '10.99.0.0/24', podCIDRs: ['10.99.0.0/24'] }, /lies outside --cluster-cidr/],
      ['h-no-ip', [], { podCIDR: '10.244.200.0/24', podCIDRs: ['10.244.200.0/24'] }, /has no InternalIP/],
      ['h-inside-pods', [`${c1[0].split('.').slice(0, 3).join('.')}.77`], { podCIDR: '10.244.201.0/24', podCIDRs: ['10.244.201.0/24'] }, /lies inside node n1's podCIDR/],
      ['h-ip-garbage', ['not-an-ip'], { podCIDR: '10.244.202.0/24', podCIDRs: ['10.244.202.0/24'] }, /has no InternalIP that parses/],
    ];
    const accepted: string[] = [];
    for (const [name, ips, spec] of hostile) {
      try {
        createNode(name, ips, spec);
        accepted.push(name);
      } catch (err) {
        // The API server refuses some of it itself: that is fine, nothing reached the agents.
        console.log(`API server refused ${name}: ${String(err).split('\n')[0]}`);
      }
    }
    assert.ok(accepted.length >= 4, `the API took only ${accepted.join(', ')}`);
    for (const [name, , , reason] of hostile.filter(([nm]) => accepted.includes(nm))) {
      await waitFor(`n1 refusing ${name}`, () => world.logOf(n('n1')).some((l) => l.msg === 'node refused' && l.node === name && reason.test(String(l.reason))), 30_000);
    }
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual(names.map((x) => dataplaneOf(n(x))), before);
    assert.equal(ask(pods.get('n1')!.netns, pods.get('n2')!.ip4, PORT), pods.get('n1')!.ip4);
    for (const name of accepted) kubectl(['delete', 'node', name]);
  });

  test('metrics: peers, routes, reconciles, API errors and watch restarts', () => {
    const r = world.exec(n('n1').netns, process.execPath, ['-e', 'fetch("http://127.0.0.1:9478/metrics").then(async (r) => process.stdout.write(await r.text()))']);
    assert.equal(r.status, 0, r.stderr);
    // n1's peers now: n2 (host-gw) and n3 (VXLAN); n4 and n5 were deleted.
    for (const m of [/^pier_agent_peers 2$/m, /^pier_agent_routes\{family="ipv4",via="host-gw"\} 1$/m, /^pier_agent_routes\{family="ipv4",via="vxlan"\} 1$/m,
      /^pier_agent_routes\{family="ipv6",via="host-gw"\} 1$/m, /^pier_agent_routes\{family="ipv6",via="vxlan"\} 1$/m,
      /^pier_agent_reconciles_total\{result="ok"\} \d+$/m, /^pier_agent_reconcile_duration_seconds_count \d+$/m, /^pier_agent_api_errors_total\{op="\w+"\} [1-9]\d*$/m,
      /^pier_agent_watch_restarts_total\{reason="\w+"\} [1-9]\d*$/m, /^pier_agent_api_up 1$/m, /^pier_agent_ready 1$/m]) {
      assert.match(r.stdout, m);
    }
  });

  test('SIGTERM: every agent exits 0 and leaves routes, conflists and tables in place', async () => {
    const names = ['n1', 'n2', 'n3'];
    const before = names.map((x) => dataplaneOf(n(x)));
    for (const x of names) assert.equal(await world.stopAgent(n(x)), 0);
    assert.deepEqual(names.map((x) => dataplaneOf(n(x))), before);
    assert.equal(ask(pods.get('n2')!.netns, pods.get('n3')!.ip4, PORT), pods.get('n2')!.ip4);
  });
});

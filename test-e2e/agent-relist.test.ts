// `pier agent` in an IPv4-only cluster started without --cluster-cidr, on a real kube-apiserver
// whose watch cache is off and which compacts etcd every second: there, resuming a watch from a
// resourceVersion older than the last compaction gets 410 Gone for certain, so the relist path
// runs deterministically. The same world checks the two refusals that need a cluster without
// --cluster-cidr to be reached: a podCIDR that covers the API server's address, and an
// IPv6-only node in an IPv4-only cluster. One agent node (m1) and Node objects without agents
// (their routes are what m1 installs); no controller-manager: podCIDRs are set at creation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startControlPlane, type ControlPlane } from './kube/control-plane.ts';
import { ensureBuilt, ROOT } from './cni-harness.ts';
import { ClusterWorld, CP_ADDR, waitFor, type SimNode } from './agent-cluster-world.ts';
import { run, uniquePrefix } from './helpers.ts';

const RBAC = join(ROOT, 'conf/pier-agent-rbac.yaml');
let world: ClusterWorld;
let cp: ControlPlane;
let m1: SimNode;

const kubectl = (args: string[], input?: string) => cp.kubectl(args, input === undefined ? {} : { input });

function createNode(name: string, ips: string[], podCIDR: string): string {
  kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { podCIDR, podCIDRs: [podCIDR] } }));
  return setAddresses(name, ips);
}

/** Sets the node's InternalIPs on status; returns the resourceVersion of that write. */
function setAddresses(name: string, ips: string[]): string {
  const addresses = [...ips.map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: name }];
  const out = kubectl(['patch', 'node', name, '--subresource=status', '--type=merge', '-o', 'jsonpath={.metadata.resourceVersion}', '-p', JSON.stringify({ status: { addresses } })]);
  return out.trim();
}

/** The agent's log lines from index `from` on. */
const logSince = (from: number) => world.logOf(m1).slice(from);

function metrics(): string {
  const r = world.exec(m1.netns, process.execPath, ['-e', 'fetch("http://127.0.0.1:9478/metrics").then(async (r) => process.stdout.write(await r.text()))']);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const reconciles = () => Number(/^pier_agent_reconciles_total\{result="ok"\} (\d+)$/m.exec(metrics())?.[1] ?? 0);
const goneRestarts = () => Number(/^pier_agent_watch_restarts_total\{reason="gone"\} (\d+)$/m.exec(metrics())?.[1] ?? 0);

before(async () => {
  ensureBuilt();
  world = new ClusterWorld(uniquePrefix());
  cp = await startControlPlane({
    name: `${world.prefix}-rl`, netns: world.cp, bindAddress: CP_ADDR, controllerManager: false,
    // Watches go to etcd itself (no cache window that might still hold an old version), and
    // etcd is compacted every second: a watch from a version older than that is 410 Gone.
    extraArgs: { apiServer: ['--watch-cache=false', '--etcd-compaction-interval=1s'] },
  });
  world.cleanup.add(() => void cp.stop());
  kubectl(['apply', '-f', RBAC]);
  const kubeconfig = await cp.serviceAccountKubeconfig('kube-system', 'pier-agent');
  m1 = world.addNode('m1', 1, '203.0.113.21', 'fd00:203:1::21');
  createNode('m1', [m1.ip4], '10.245.1.0/24');
  createNode('m2', ['203.0.113.22'], '10.245.2.0/24');
  world.startAgent(m1, kubeconfig);
  // Routes first, then the conflist, then readiness: wait for the last.
  await waitFor('m1 ready, with routes to m2', () => world.logOf(m1).some((l) => l.msg === 'node network ready')
    && world.routesOf(m1).includes('10.245.2.0/24 via 203.0.113.22 dev eth0'), 120_000, 100);
  assert.deepEqual(world.conflistOf(m1)?.plugins[0].ipam.ranges, [[{ subnet: '10.245.1.0/24' }]]);
});
after(async () => {
  await cp?.stop();
  world?.cleanup.runAll();
});

describe('pier agent in an IPv4-only cluster without --cluster-cidr', () => {
  test('a podCIDR that covers the API server\'s address, and an IPv6-only node, are refused and change nothing', async () => {
    const before = { routes: world.routesOf(m1), routes6: world.routesOf(m1, '-6'), conflist: world.conflistOf(m1) };
    const from = world.logOf(m1).length;
    // 203.0.113.96/28 holds the API server's 203.0.113.100 and no node's address.
    createNode('h-api', ['203.0.113.30'], '203.0.113.96/28');
    createNode('h-v6', ['fd00:203:1::31'], 'fd00:10:245:1::/64');
    await waitFor('both refusals logged', () => {
      const refused = logSince(from).filter((l) => l.msg === 'node refused');
      return refused.some((l) => l.node === 'h-api' && /covers the API server's address 203\.0\.113\.100/.test(String(l.reason)))
        && refused.some((l) => l.node === 'h-v6' && /IPv6-only .*cluster is IPv4-only/.test(String(l.reason)));
    }, 30_000);
    // A whole reconcile after the refusals (the agent resyncs every 10 s) still leaves everything as it was.
    const done = reconciles();
    await waitFor('a reconcile after the refusals', () => reconciles() > done, 30_000, 250);
    assert.deepEqual({ routes: world.routesOf(m1), routes6: world.routesOf(m1, '-6'), conflist: world.conflistOf(m1) }, before);
    kubectl(['delete', 'node', 'h-api', 'h-v6']);
  });

  test('a watch resumed from a compacted resourceVersion gets 410: the agent lists again and catches up', async () => {
    assert.equal(goneRestarts(), 0, 'no 410 before the test');
    const port = new URL(cp.apiServerUrl).port;
    const table = `${world.prefix.replace(/-/g, '_')}_blk`;
    const nft = (...args: string[]) => run('ip', ['netns', 'exec', m1.netns, 'nft', ...args]);
    // Cut m1 off the API: its own packets to it are answered with a reset, so its watch breaks
    // at the next event and every retry fails at once.
    nft('add', 'table', 'inet', table);
    world.cleanup.add(() => void world.exec(m1.netns, 'nft', ['delete', 'table', 'inet', table]));
    nft('add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0; }');
    nft('add', 'rule', 'inet', table, 'out', 'ip', 'daddr', CP_ADDR, 'tcp', 'dport', port, 'reject', 'with', 'tcp', 'reset');
    const from = world.logOf(m1).length;
    // Changes m1 cannot see: m2 moves, m3 joins.
    setAddresses('m2', ['203.0.113.23']);
    await waitFor('m1 losing the API', () => logSince(from).some((l) => l.msg === 'API call failed; retrying'), 60_000);
    const last = createNode('m3', ['203.0.113.24'], '10.245.3.0/24');
    // More writes, so that compaction passes the last version m1 can have seen; then wait until
    // a watch from that version is 410 for anyone.
    for (let i = 0; i < 3; i++) kubectl(['create', 'configmap', `${world.prefix}-churn-${i}`, '-n', 'default']);
    await waitFor(`etcd compacted past ${last}`, () => {
      const out = kubectl(['get', '--raw', `/api/v1/nodes?watch=1&resourceVersion=${last}&timeoutSeconds=1`]);
      return /"code":410/.test(out);
    }, 60_000, 500);
    nft('delete', 'table', 'inet', table);
    await waitFor('m1 listing again after 410', () => logSince(from).some((l) => l.msg === 'watch resourceVersion expired; listing again'), 60_000);
    await waitFor('m1 caught up: m2 moved, m3 routed', () => {
      const r = world.routesOf(m1);
      return r.includes('10.245.2.0/24 via 203.0.113.23 dev eth0') && r.includes('10.245.3.0/24 via 203.0.113.24 dev eth0') ? r : undefined;
    }, 60_000);
    assert.ok(goneRestarts() >= 1, 'pier_agent_watch_restarts_total{reason="gone"} counted it');
    assert.deepEqual(world.routesOf(m1), ['10.245.2.0/24 via 203.0.113.23 dev eth0', '10.245.3.0/24 via 203.0.113.24 dev eth0']);
  });
});

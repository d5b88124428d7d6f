#!/usr/bin/env node
// A simulated cluster to try `pier agent` by hand (as root): the test control plane in a netns,
// N node netns running dist/pier agent (the first half on one underlay segment, the rest behind
// a router, so both host-gw and VXLAN are in use), one pod per node wired by dist/pier with the
// conflist its agent wrote. Prints how to look around, then runs until Ctrl-C, which stops
// everything and removes every netns and file it made.
//   node --import tsx scripts/agent-cluster-up.ts [--nodes N=3]
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startControlPlane } from '../test-e2e/kube/control-plane.ts';
import { ClusterWorld, CP_ADDR, waitFor } from '../test-e2e/agent-cluster-world.ts';
import { ensureBuilt, PIER, ROOT } from '../test-e2e/cni-harness.ts';

const i = process.argv.indexOf('--nodes');
const count = i >= 0 ? Number(process.argv[i + 1]) : 3;
if (!Number.isInteger(count) || count < 1 || count > 50) throw new Error('--nodes must be 1 to 50');
if (process.getuid?.() !== 0) throw new Error('run as root: it creates network namespaces');
ensureBuilt();
const world = new ClusterWorld(`pc${randomBytes(2).toString('hex')}`);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('stopping: agents, control plane, netns, files\n');
  world.cleanup.runAll();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
try {
  const cluster = '10.244.0.0/16,fd00:10:244::/56';
  const cp = await startControlPlane({ name: `${world.prefix}-up`, netns: world.cp, bindAddress: CP_ADDR, clusterCidr: cluster, nodeCidrMaskSize: { v4: 24, v6: 64 } });
  world.cleanup.add(() => void cp.stop());
  cp.kubectl(['apply', '-f', join(ROOT, 'conf/pier-agent-rbac.yaml')]);
  const kubeconfig = await cp.serviceAccountKubeconfig('kube-system', 'pier-agent');
  const nodes = Array.from({ length: count }, (_, k) => {
    const seg = k < Math.ceil(count / 2) ? 1 : 2;
    const host = seg === 1 ? 11 + k : 141 + k;
    const n = world.addNode(`n${k + 1}`, seg, `203.0.113.${host}`, `fd00:203:${seg}::${host}`);
    cp.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name } }) });
    cp.kubectl(['patch', 'node', n.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: n.ip4 }, { type: 'InternalIP', address: n.ip6 }] } })]);
    world.startAgent(n, kubeconfig, ['--cluster-cidr', cluster]);
    return n;
  });
  await waitFor('every conflist', () => nodes.every((n) => world.conflistOf(n)), 120_000, 250);
  const pods = nodes.map((n) => world.addPod(n));
  const env = join(world.dir, 'env.sh');
  writeFileSync(env, `export KUBECONFIG=${cp.hostKubeconfig}\n`);
  console.log(`
Cluster up (${count} node${count > 1 ? 's' : ''}, dual stack; ${world.dir}):
  source ${env}; kubectl get nodes -o wide
${nodes.map((n, k) => `  ${n.name}: netns ${n.netns}, ${n.ip4} / ${n.ip6}, segment ${n.segment}; agent log ${n.log}
      pod netns ${pods[k].netns}: ${pods[k].ip4} / ${pods[k].ip6}`).join('\n')}
Try:
  ip netns exec ${pods[0].netns} ping -c1 ${pods.at(-1)!.ip4}
  ip netns exec ${nodes[0].netns} ${PIER} status --run-dir ${nodes[0].runDir}
  ip -n ${nodes[0].netns} route show proto 173
Ctrl-C stops it and removes everything.`);
  await new Promise(() => {});
} catch (err) {
  process.stderr.write(`agent-cluster-up: ${err instanceof Error ? err.stack : String(err)}\n`);
  world.cleanup.runAll();
  process.exit(1);
}

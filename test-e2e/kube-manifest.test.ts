// conf/kubernetes/pier.yaml against a real kube-apiserver (the test control plane, built from Go
// modules by scripts/kube-build.sh): the server accepts it with strict field validation, the
// DaemonSet's pod passes the Pod admission chain as the DaemonSet controller would create it
// (priority class, service account, security), a second apply changes nothing, and the
// ServiceAccount may do exactly what the agent does (RBAC answered by the server).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cni-harness.ts';
import { startControlPlane, type ControlPlane } from './kube/control-plane.ts';

const MANIFEST = join(ROOT, 'conf/kubernetes/pier.yaml');
const SA = 'system:serviceaccount:kube-system:pier-agent';
let cp: ControlPlane;

before(async () => {
  cp = await startControlPlane({ name: 'pier-manifest' });
});
after(async () => {
  await cp?.stop();
});

/** The lines kubectl printed, one per object. */
const lines = (out: string) => out.trim().split('\n').sort();

test('kubectl apply --dry-run=server --validate=strict accepts every object', () => {
  const out = cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', MANIFEST]);
  assert.deepEqual(lines(out), [
    'clusterrole.rbac.authorization.k8s.io/pier-agent created (server dry run)',
    'clusterrolebinding.rbac.authorization.k8s.io/pier-agent created (server dry run)',
    'daemonset.apps/pier created (server dry run)',
    'serviceaccount/pier-agent created (server dry run)',
  ]);
});

test('applied for real, then again: nothing changes the second time', () => {
  const first = cp.kubectl(['apply', '--validate=strict', '-f', MANIFEST]);
  assert.equal(lines(first).filter((l) => l.endsWith(' created')).length, 4, first);
  const second = cp.kubectl(['apply', '--validate=strict', '-f', MANIFEST]);
  assert.equal(lines(second).filter((l) => l.endsWith(' unchanged')).length, 4, second);
});

test('the DaemonSet\'s pod, as its controller would create it on a node, passes Pod admission', () => {
  const ds = JSON.parse(cp.kubectl(['get', 'daemonset', '-n', 'kube-system', 'pier', '-o', 'json']));
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'pier-node-a', namespace: 'kube-system', labels: ds.spec.template.metadata.labels },
    spec: { ...ds.spec.template.spec, nodeName: 'node-a' },
  };
  const out = JSON.parse(cp.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: JSON.stringify(pod) }));
  // The Priority admission plugin resolved the built-in class.
  assert.equal(out.spec.priorityClassName, 'system-node-critical');
  assert.equal(out.spec.priority, 2000001000);
  // The ServiceAccount admission plugin mounted the token the in-cluster config reads.
  const agent = out.spec.containers.find((c: { name: string }) => c.name === 'agent');
  assert.ok(agent.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/var/run/secrets/kubernetes.io/serviceaccount'));
  assert.equal(agent.livenessProbe.httpGet.host, '127.0.0.1');
});

/** `kubectl auth can-i VERB RESOURCE` as the agent's ServiceAccount: the server's answer. */
function canI(verb: string, resource: string, subresource?: string): boolean {
  const args = ['--kubeconfig', cp.hostKubeconfig, 'auth', 'can-i', verb, resource, `--as=${SA}`, ...(subresource ? [`--subresource=${subresource}`] : [])];
  const r = spawnSync('/usr/bin/kubectl', args, { encoding: 'utf8' });
  const answer = r.stdout.trim();
  assert.ok(answer === 'yes' || answer === 'no', `kubectl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return answer === 'yes';
}

test('the agent\'s ServiceAccount may list, watch and patch nodes and patch nodes/status, and nothing else', () => {
  for (const verb of ['list', 'watch', 'patch']) assert.equal(canI(verb, 'nodes'), true, `${verb} nodes`);
  assert.equal(canI('patch', 'nodes', 'status'), true, 'patch nodes/status');
  for (const [verb, resource] of [['get', 'nodes'], ['update', 'nodes'], ['delete', 'nodes'], ['create', 'nodes'], ['list', 'pods'], ['get', 'secrets'], ['list', 'configmaps']]) {
    assert.equal(canI(verb, resource), false, `${verb} ${resource}`);
  }
  assert.equal(canI('update', 'nodes', 'status'), false, 'update nodes/status');
});

// conf/kubernetes/pier.yaml against the code it deploys: the ClusterRole grants exactly the API
// calls of kube-api.ts (read from its source), its RBAC documents are conf/pier-agent-rbac.yaml
// word for word, and the DaemonSet runs the image `npm run image` names, probes the agent's
// default metrics address, installs into the host's CNI bin dir and mounts each host path where
// the conflist the agent writes expects it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { FLAGS } from './flags.ts';
import { imageName } from '../../scripts/pier-image.mjs';
import pkg from '../../package.json' with { type: 'json' };

const ROOT = join(import.meta.dirname, '../..');
const MANIFEST = join(ROOT, 'conf/kubernetes/pier.yaml');
const RBAC = join(ROOT, 'conf/pier-agent-rbac.yaml');
const text = readFileSync(MANIFEST, 'utf8');
// Plain objects: loadAllYaml gives the client's model classes, which deepEqual tells apart.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const docs = JSON.parse(JSON.stringify(loadAllYaml(text))) as any[];
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);

/**
 * Each call of the official client in kube-api.ts, and what RBAC it needs. A call missing here
 * fails the test: add it, and grant it in the ClusterRole.
 */
const CLIENT_CALLS: Record<string, string> = {
  listNode: 'nodes list',
  readNode: 'nodes get',
  patchNode: 'nodes patch',
  patchNodeStatus: 'nodes/status patch',
  replaceNode: 'nodes update',
  replaceNodeStatus: 'nodes/status update',
  createNode: 'nodes create',
  deleteNode: 'nodes delete',
};

/** The permissions kube-api.ts needs, read from its source: client calls and watched paths. */
function neededByCode(): string[] {
  const src = readFileSync(join(import.meta.dirname, 'kube-api.ts'), 'utf8');
  const needed = new Set<string>();
  const apis = [...src.matchAll(/makeApiClient\((\w+)\)/g)].map((m) => m[1]);
  assert.deepEqual(apis, ['CoreV1Api'], 'kube-api.ts makes one CoreV1Api client; another API group needs its rules here');
  for (const m of src.matchAll(/\bcore\.(\w+)\(/g)) {
    const rbac = CLIENT_CALLS[m[1]];
    assert.ok(rbac, `kube-api.ts calls core.${m[1]}: say in manifest.test.ts what RBAC it needs`);
    needed.add(rbac);
  }
  for (const m of src.matchAll(/\.watch\(\s*'\/api\/v1\/(\w+)'/g)) needed.add(`${m[1]} watch`);
  assert.ok(needed.size >= 3, `found ${[...needed]}`);
  return [...needed].sort();
}

test('the ClusterRole grants exactly what src/agent/kube-api.ts calls, and nothing else', () => {
  const [role] = byKind('ClusterRole');
  const granted = role.rules.flatMap((r: { apiGroups: string[]; resources: string[]; verbs: string[] }) => {
    assert.deepEqual(r.apiGroups, [''], 'core API group only');
    return r.resources.flatMap((res) => r.verbs.map((v) => `${res} ${v}`));
  });
  assert.deepEqual(granted.sort(), neededByCode());
  assert.deepEqual(neededByCode(), ['nodes list', 'nodes patch', 'nodes watch', 'nodes/status patch']);
});

test('the RBAC documents are conf/pier-agent-rbac.yaml word for word, and bind the DaemonSet\'s ServiceAccount', () => {
  const body = (t: string) => t.split(/^---$/m).map((d) => d.replace(/^(#.*\n)+/m, '').trim()).filter(Boolean);
  const rbac = body(readFileSync(RBAC, 'utf8'));
  assert.equal(rbac.length, 3);
  assert.deepEqual(body(text).slice(0, 3), rbac);
  const [sa] = byKind('ServiceAccount');
  const [binding] = byKind('ClusterRoleBinding');
  const [ds] = byKind('DaemonSet');
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
  assert.equal(binding.roleRef.name, byKind('ClusterRole')[0].metadata.name);
  assert.equal(ds.spec.template.spec.serviceAccountName, sa.metadata.name);
  assert.equal(ds.metadata.namespace, sa.metadata.namespace);
  assert.equal(ds.metadata.namespace, 'kube-system');
});

test('the DaemonSet: the image npm run image makes, host network, privileged, every taint, NODE_NAME, node-critical', () => {
  const [ds] = byKind('DaemonSet');
  const spec = ds.spec.template.spec;
  const [init] = spec.initContainers;
  const [agent] = spec.containers;
  for (const c of [init, agent]) {
    assert.equal(c.image, imageName(pkg.version), `${c.name} runs localhost/pier:${pkg.version}`);
    assert.equal(c.imagePullPolicy, 'IfNotPresent', 'no registry: a loaded image is used as it is');
  }
  assert.equal(spec.hostNetwork, true);
  assert.equal(agent.securityContext.privileged, true);
  assert.deepEqual(spec.tolerations, [{ operator: 'Exists' }]);
  assert.equal(spec.priorityClassName, 'system-node-critical');
  assert.deepEqual(agent.env.find((e: { name: string }) => e.name === 'NODE_NAME').valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  assert.ok(spec.terminationGracePeriodSeconds <= 10);
  assert.equal(agent.args[0], 'agent');
  assert.ok(agent.resources.requests.cpu && agent.resources.requests.memory && agent.resources.limits.memory);
});

test('probes go to the agent\'s metrics address (127.0.0.1, as the kubelet reaches it from the node) at /healthz', () => {
  const [ds] = byKind('DaemonSet');
  const [agent] = ds.spec.template.spec.containers;
  const def = FLAGS.find((f) => f.name === '--metrics-addr')?.def;
  const i = agent.args.indexOf('--metrics-addr');
  const addr: string = i > 0 ? agent.args[i + 1] : def;
  assert.equal(addr, def, 'the default address, said explicitly');
  const [host, port] = addr.split(':');
  for (const probe of [agent.livenessProbe, agent.readinessProbe]) {
    assert.deepEqual(probe.httpGet, { host, port: Number(port), path: '/healthz' });
  }
});

test('the init container installs into the host\'s /opt/cni/bin; host paths are mounted where the conflist names them', () => {
  const [ds] = byKind('DaemonSet');
  const spec = ds.spec.template.spec;
  const hostPath = (name: string) => spec.volumes.find((v: { name: string }) => v.name === name).hostPath.path;
  const [init] = spec.initContainers;
  assert.equal(init.args[0], 'install-cni');
  const dest = init.args[init.args.indexOf('--dest') + 1];
  const destMount = init.volumeMounts.find((m: { mountPath: string }) => m.mountPath === dest);
  assert.equal(hostPath(destMount.name), '/opt/cni/bin');
  assert.notEqual(destMount.readOnly, true);
  const [agent] = spec.containers;
  const mounts = Object.fromEntries(agent.volumeMounts.map((m: { name: string; mountPath: string }) => [hostPath(m.name), m]));
  // The agent writes paths into the conflist that the plugin, on the host, opens: same paths.
  for (const p of ['/etc/cni/net.d', '/var/lib/pier', '/run/pier', '/run/netns']) assert.equal(mounts[p]?.mountPath, p, p);
  const def = (name: string) => FLAGS.find((f) => f.name === name)?.def ?? '';
  assert.ok(def('--cni-conf-dir') === '/etc/cni/net.d' && def('--data-dir').startsWith('/var/lib/pier/') && def('--run-dir').startsWith('/run/pier/'));
  assert.equal(mounts['/run/netns'].mountPropagation, 'HostToContainer', 'netns the runtime makes later show up');
});

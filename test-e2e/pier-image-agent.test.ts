// `pier agent` from the image, run by a real containerd 1.6 as the DaemonSet runs it, against a
// real kube-apiserver: the agent container's args and env from conf/kubernetes/pier.yaml, the
// in-cluster config (a ServiceAccount token and CA at their usual path, KUBERNETES_SERVICE_HOST
// and _PORT), the RBAC of the manifest, the node's network (`--net-host`: here the CRI harness's
// throwaway netns, which plays the node) and the host paths mounted where the manifest mounts
// them. It writes the node's conflist, sets up its nft table with the image's nft, answers
// /healthz where the probes look, sets NetworkUnavailable=False, and on SIGTERM exits 0 leaving
// all of it in place.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { uniquePrefix } from './helpers.ts';
import { ensureBuilt, ROOT } from './cni-harness.ts';
import { ContainerdHost, debianContainerd, waitFor } from './cri/containerd.ts';
import { missingImageDeps, pierImage, testImages } from './cri/images.ts';
import { pierCni } from './cri/networks.ts';
import { startControlPlane, type ControlPlane } from './kube/control-plane.ts';

ensureBuilt();
const missing = missingImageDeps();
if (missing) throw new Error(missing);
const image = pierImage();

const API_ADDR = '203.0.113.10';
const CLUSTER = '10.244.0.0/16';
const NODE = 'node-img';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

// The DaemonSet's agent container, as the manifest says.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const manifest = JSON.parse(JSON.stringify(loadAllYaml(readFileSync(join(ROOT, 'conf/kubernetes/pier.yaml'), 'utf8')))) as any[];
const ds = manifest.find((d) => d.kind === 'DaemonSet');
const agentSpec = ds.spec.template.spec.containers.find((c: { name: string }) => c.name === 'agent');
const volumes = new Map<string, string>(ds.spec.template.spec.volumes.map((v: { name: string; hostPath: { path: string } }) => [v.name, v.hostPath.path]));

const build = debianContainerd();
const prefix = uniquePrefix();
let host: ContainerdHost;
let cp: ControlPlane;
let agent: ChildProcess | undefined;
let agentExit: Promise<number | null> | undefined;
let agentOutput = '';
/** The node's host paths (as the manifest's hostPath volumes name them), under the test dir. */
const nodePath = (hostPath: string) => join(host.dir, 'node', hostPath);
const containerId = `${prefix}-agent`;

before(async () => {
  if (!build) throw new Error("Debian's containerd is missing: run scripts/install-cri-deps.sh");
  const images = testImages();
  host = new ContainerdHost({
    build,
    prefix,
    ...pierCni(),
    images: [images.pause, image],
    sandboxImage: images.pause.ref,
  });
  await host.start();
  // The node's address, which the API server listens on too (a one-node cluster).
  const [a, b] = [`${prefix}n0`, `${prefix}n1`];
  const sh = (args: string[]) => {
    const r = host.exec('ip', args);
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  sh(['link', 'add', a, 'type', 'veth', 'peer', 'name', b]);
  sh(['addr', 'add', `${API_ADDR}/24`, 'dev', a]);
  sh(['link', 'set', a, 'up']);
  sh(['link', 'set', b, 'up']);
  cp = await startControlPlane({ name: `${prefix}-img`, netns: host.netns, bindAddress: API_ADDR, clusterCidr: CLUSTER, nodeCidrMaskSize: { v4: 24 } });
  cp.kubectl(['apply', '-f', join(ROOT, 'conf/pier-agent-rbac.yaml')]);
  cp.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } }) });
  const addresses = [{ type: 'InternalIP', address: API_ADDR }, { type: 'Hostname', address: NODE }];
  cp.kubectl(['patch', 'node', NODE, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { addresses } })]);
});

after(async () => {
  if (agent && agent.exitCode === null) host.exec(build!.ctr, ['-a', host.socket, '-n', 'k8s.io', 'task', 'kill', '-s', 'SIGKILL', containerId]);
  await cp?.stop();
  await host?.cleanup();
});

test('the agent runs from the image with the manifest\'s args, env, mounts and in-cluster config', async () => {
  // What the kubelet gives the pod: the ServiceAccount's token, the cluster CA, the namespace.
  const sa = join(host.dir, 'sa');
  mkdirSync(sa);
  writeFileSync(join(sa, 'token'), cp.kubectl(['create', 'token', 'pier-agent', '-n', 'kube-system', '--duration=1h']).trim());
  copyFileSync(cp.caFile, join(sa, 'ca.crt'));
  writeFileSync(join(sa, 'namespace'), 'kube-system');
  const mounts = agentSpec.volumeMounts.map((m: { name: string; mountPath: string; readOnly?: boolean }) => {
    const src = nodePath(volumes.get(m.name)!);
    mkdirSync(src, { recursive: true });
    return ['--mount', `type=bind,src=${src},dst=${m.mountPath},options=rbind:${m.readOnly ? 'ro' : 'rw'}`];
  });
  const env = agentSpec.env.map((e: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }) => {
    assert.equal(e.valueFrom?.fieldRef?.fieldPath, 'spec.nodeName', `${e.name}: only the downward API's node name is expected`);
    return ['--env', `${e.name}=${NODE}`];
  });
  const apiPort = new URL(cp.apiServerUrl).port;
  agent = host.spawnInHost(build!.ctr, [
    '-a', host.socket, '-n', 'k8s.io', 'run', '--rm', '--net-host', '--privileged',
    '--cgroup', `${host.cgroupParent}/agent`,
    ...mounts.flat(), ...env.flat(),
    '--mount', `type=bind,src=${sa},dst=${SA_DIR},options=rbind:ro`,
    '--env', `KUBERNETES_SERVICE_HOST=${API_ADDR}`, '--env', `KUBERNETES_SERVICE_PORT=${apiPort}`,
    // ctr's arguments replace the whole command line: the entrypoint, then the manifest's args.
    image.ref, containerId, '/usr/local/bin/pier', ...agentSpec.args,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout!.on('data', (d) => (agentOutput += d));
  agent.stderr!.on('data', (d) => (agentOutput += d));
  agentExit = new Promise((res) => agent!.once('exit', (code) => res(code)));

  const conflist = join(nodePath('/etc/cni/net.d'), '10-pier.conflist');
  await waitFor('the conflist the agent writes for the node', () => {
    if (agent!.exitCode !== null) throw new Error(`the agent exited (${agent!.exitCode}):\n${agentOutput}`);
    return existsSync(conflist);
  }, 180_000);
  const podCidrs = JSON.parse(cp.kubectl(['get', 'node', NODE, '-o', 'json'])).spec.podCIDRs;
  const list = JSON.parse(readFileSync(conflist, 'utf8'));
  assert.deepEqual(list.plugins[0].ipam.ranges.map((r: Array<{ subnet: string }>) => r[0].subnet), podCidrs);
  // The paths it wrote into the conflist are the host's: the plugin on the node opens them.
  assert.equal(list.plugins[0].ipam.dataDir, '/var/lib/pier/networks');
  assert.match(list.plugins[0].readyFile, /^\/run\/pier\/agent\//);
  await waitFor('the ready file on the node', () => existsSync(nodePath(list.plugins[0].readyFile)), 60_000);
});

test('its masquerade table is in the node\'s netns (the image\'s nft), its /healthz answers where the probes look, NetworkUnavailable is False', async (t) => {
  await waitFor('table inet pier_cluster in the node netns', () => host.exec('nft', ['list', 'table', 'inet', 'pier_cluster']).status === 0, 60_000);
  const probe = agentSpec.livenessProbe.httpGet;
  const url = `http://${probe.host}:${probe.port}${probe.path}`;
  const r = host.exec(process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then(async (r) => { console.log(r.status, await r.text()); })`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^200 ok: api reachable/);
  await waitFor('NetworkUnavailable=False', () => {
    const conds = JSON.parse(cp.kubectl(['get', 'node', NODE, '-o', 'json'])).status.conditions ?? [];
    return conds.some((c: { type: string; status: string; reason: string }) => c.type === 'NetworkUnavailable' && c.status === 'False' && c.reason === 'PierRoutesCreated');
  }, 60_000);
  // For the manifest's memory request and limit: what the container's memory cgroup counts
  // (the figure a limit applies to), reported, not asserted.
  try {
    const cg = `/sys/fs/cgroup/memory${host.cgroupParent}/agent`;
    const stat = Object.fromEntries(readFileSync(`${cg}/memory.stat`, 'utf8').trim().split('\n').map((l) => l.split(' ')));
    const mb = (n: string | number) => `${(Number(n) / 2 ** 20).toFixed(1)} MiB`;
    t.diagnostic(`agent container memory: usage ${mb(readFileSync(`${cg}/memory.usage_in_bytes`, 'utf8'))}, rss ${mb(stat.rss)}, cache ${mb(stat.cache)}, max ${mb(readFileSync(`${cg}/memory.max_usage_in_bytes`, 'utf8'))}`);
  } catch {
    // No cgroup v1 memory controller here: nothing to report.
  }
});

test('SIGTERM: the agent exits 0 and leaves the conflist and the table in place', async () => {
  host.exec(build!.ctr, ['-a', host.socket, '-n', 'k8s.io', 'task', 'kill', '-s', 'SIGTERM', containerId]);
  assert.equal(await agentExit, 0, agentOutput);
  assert.ok(existsSync(join(nodePath('/etc/cni/net.d'), '10-pier.conflist')));
  assert.equal(host.exec('nft', ['list', 'table', 'inet', 'pier_cluster']).status, 0);
  assert.match(agentOutput, /"level":"info"/, 'JSON log lines on stderr');
});

// The test cluster harness (test-e2e/kube/control-plane.ts) against the real components: etcd,
// kube-apiserver and kube-controller-manager built from Go modules, run inside a throwaway netns,
// reached from this process only through the forwarder. Needs root (netns) and the built binaries
// (scripts/kube-build.sh; the first build takes a long time).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { Cleanup, run, uniquePrefix } from './helpers.ts';
import { startControlPlane, type ControlPlane } from './kube/control-plane.ts';
import { cidrContains, httpsGet, sleep } from './kube/net-util.ts';

const CLUSTER_V4 = '10.244.0.0/16';
const CLUSTER_V6 = 'fd00:244::/56';
const API_ADDR = '203.0.113.10';

/** Polls until fn returns a value other than undefined; generous deadline, no timing assertion. */
async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(250);
  }
}

interface NodeObj {
  metadata: { name: string; uid: string; resourceVersion: string; labels?: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
}

function getNode(cp: ControlPlane, name: string): NodeObj {
  return JSON.parse(cp.kubectl(['get', 'node', name, '-o', 'json'])) as NodeObj;
}

function createNode(cp: ControlPlane, name: string): void {
  cp.kubectl(['create', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name } }) });
}

async function waitPodCidrs(cp: ControlPlane, name: string, count: number): Promise<string[]> {
  return waitFor(`${count} podCIDRs on ${name}`, () => {
    const cidrs = getNode(cp, name).spec.podCIDRs ?? [];
    return cidrs.length >= count ? cidrs : undefined;
  });
}

/** A kubectl call that must be refused with 403 Forbidden. */
function assertForbidden(cp: ControlPlane, args: string[], kubeconfig: string, user: string): void {
  assert.throws(() => cp.kubectl(args, { kubeconfig }), (err: Error) => {
    assert.match(err.message, /Forbidden/);
    assert.match(err.message, new RegExp(`User "${user}" cannot`));
    return true;
  });
}

function whoami(cp: ControlPlane, kubeconfig: string): { username: string; groups: string[] } {
  const { username, groups } = JSON.parse(cp.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig })).status.userInfo;
  return { username, groups };
}

function listeningPorts(netns?: string): string {
  return run(netns ? 'ip' : 'ss', netns ? ['netns', 'exec', netns, 'ss', '-Htln'] : ['-Htln']);
}

describe('control plane in a throwaway netns, dual stack', () => {
  const cleanup = new Cleanup();
  const ns = `${uniquePrefix()}-kcp`;
  let cp: ControlPlane;

  before(async () => {
    run('ip', ['netns', 'add', ns]);
    cleanup.addNetns(ns);
    // The apiserver listens on the netns's own address, as on a node: the host reaches it through
    // the forwarder and 127.0.0.1, which its certificate must cover too.
    run('ip', ['-n', ns, 'link', 'add', 'underlay0', 'type', 'veth', 'peer', 'name', 'underlay1']); // no dummy module here
    run('ip', ['-n', ns, 'addr', 'add', `${API_ADDR}/24`, 'dev', 'underlay0']);
    run('ip', ['-n', ns, 'link', 'set', 'underlay0', 'up']);
    cp = await startControlPlane({
      name: 'kcp',
      netns: ns,
      bindAddress: API_ADDR,
      clusterCidr: `${CLUSTER_V4},${CLUSTER_V6}`,
      nodeCidrMaskSize: { v4: 24, v6: 64 },
    });
  });
  after(async () => {
    await cp?.stop();
    cleanup.runAll();
  });

  test('runs inside the netns and reaches the host only through the forwarder', async () => {
    const apiPort = new URL(cp.apiServerUrl).port;
    assert.equal(cp.apiServerUrl, `https://${API_ADDR}:${apiPort}`);
    assert.match(listeningPorts(ns), new RegExp(`${API_ADDR.replaceAll('.', '\\.')}:${apiPort}\\b`));
    assert.equal(new URL(cp.hostApiServerUrl).hostname, '127.0.0.1');
    // The harness gave the netns no link and the host netns no route toward it.
    const links = JSON.parse(run('ip', ['-n', ns, '-j', 'link'])) as Array<{ ifname: string }>;
    assert.deepEqual(links.map((a) => a.ifname).sort(), ['lo', 'underlay0', 'underlay1']);
    assert.deepEqual(JSON.parse(run('ip', ['-j', 'route', 'show', 'match', API_ADDR])).filter((r: { dst: string }) => r.dst !== 'default'), []);
    // The kubernetes Service points at the advertised address.
    const addrs = await waitFor('the kubernetes EndpointSlice', () => {
      const slice = JSON.parse(cp.kubectl(['get', 'endpointslice', '-n', 'default', 'kubernetes', '-o', 'json']));
      return slice.endpoints?.map((e: { addresses: string[] }) => e.addresses[0]);
    });
    assert.deepEqual(addrs, [API_ADDR]);
    const host = JSON.parse(readFileSync(cp.hostKubeconfig, 'utf8'));
    assert.equal(host.clusters[0].cluster.server, cp.hostApiServerUrl);
    const admin = JSON.parse(readFileSync(cp.adminKubeconfig, 'utf8'));
    assert.equal(admin.clusters[0].cluster.server, cp.apiServerUrl);
    assert.equal(whoami(cp, cp.hostKubeconfig).username, 'pier-admin');
    assert.ok(whoami(cp, cp.hostKubeconfig).groups.includes('system:masters'));
    // The server says which Kubernetes it is: the version stamped by scripts/kube-build.sh.
    const version = JSON.parse(cp.kubectl(['version', '-o', 'json'])).serverVersion.gitVersion;
    assert.match(version, /^v1\.\d+\.\d+$/);
  });

  test('Nodes created without a podCIDR get one per family from the controller manager', async () => {
    createNode(cp, 'node-a');
    createNode(cp, 'node-b');
    const a = await waitPodCidrs(cp, 'node-a', 2);
    const b = await waitPodCidrs(cp, 'node-b', 2);
    for (const cidrs of [a, b]) {
      assert.equal(cidrs.length, 2, `one CIDR per family: ${cidrs}`);
      assert.ok(cidrContains(CLUSTER_V4, cidrs[0]) && cidrs[0].endsWith('/24'), `IPv4 /24 in ${CLUSTER_V4}: ${cidrs[0]}`);
      assert.ok(cidrContains(CLUSTER_V6, cidrs[1]) && cidrs[1].endsWith('/64'), `IPv6 /64 in ${CLUSTER_V6}: ${cidrs[1]}`);
    }
    assert.notEqual(a[0], b[0]);
    assert.notEqual(a[1], b[1]);
    assert.equal(getNode(cp, 'node-a').spec.podCIDR, a[0]);
  });

  test('a watch from the test process sees a change made through kubectl', async () => {
    const kc = JSON.parse(readFileSync(cp.hostKubeconfig, 'utf8'));
    const b64 = (s: string) => Buffer.from(s, 'base64');
    const rv = getNode(cp, 'node-a').metadata.resourceVersion;
    const url = `${kc.clusters[0].cluster.server}/api/v1/nodes?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dnode-a`;
    const events: Array<{ type: string; object: NodeObj }> = [];
    const req = request(url, {
      ca: b64(kc.clusters[0].cluster['certificate-authority-data']),
      cert: b64(kc.users[0].user['client-certificate-data']),
      key: b64(kc.users[0].user['client-key-data']),
      agent: false,
    });
    const connected = new Promise<void>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        if (res.statusCode !== 200) reject(new Error(`watch: HTTP ${res.statusCode}`));
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            events.push(JSON.parse(buf.slice(0, i)));
            buf = buf.slice(i + 1);
          }
        });
        resolve();
      });
    });
    req.end();
    try {
      await connected;
      cp.kubectl(['label', 'node', 'node-a', 'pier.test/watched=yes']);
      const ev = await waitFor('the MODIFIED event', () =>
        events.find((e) => e.type === 'MODIFIED' && e.object.metadata.labels?.['pier.test/watched'] === 'yes'), 60_000);
      assert.equal(ev.object.metadata.name, 'node-a');
    } finally {
      req.destroy();
    }
  });

  test('RBAC: users without a binding get 403, groups and node identities come from the certificate', async () => {
    const host = cp.hostApiServerUrl;
    // Admin lists nodes; a plain user with no RBAC binding is refused.
    assert.match(cp.kubectl(['get', 'nodes', '-o', 'name']), /node\/node-a/);
    const nobody = cp.kubeconfigFor('pier-nobody', [], host);
    assertForbidden(cp, ['get', 'nodes'], nobody, 'pier-nobody');

    // A group from the certificate's O field is what a ClusterRoleBinding matches.
    cp.kubectl(['create', 'clusterrole', 'pier-test-node-reader', '--verb=get,list,watch', '--resource=nodes']);
    cp.kubectl(['create', 'clusterrolebinding', 'pier-test-node-reader', '--clusterrole=pier-test-node-reader', '--group=pier-readers']);
    const alice = cp.kubeconfigFor('alice', ['pier-readers'], host);
    assert.deepEqual(whoami(cp, alice), { username: 'alice', groups: ['pier-readers', 'system:authenticated'] });
    assert.match(cp.kubectl(['get', 'nodes', '-o', 'name'], { kubeconfig: alice }), /node\/node-b/);
    assertForbidden(cp, ['get', 'nodes'], nobody, 'pier-nobody');

    // A kubelet's identity: the Node authorizer lets it read nodes but not secrets.
    const kubelet = cp.kubeconfigFor('system:node:node-a', ['system:nodes'], host);
    assert.match(cp.kubectl(['get', 'node', 'node-a', '-o', 'name'], { kubeconfig: kubelet }), /node\/node-a/);
    assertForbidden(cp, ['get', 'secrets', '-A'], kubelet, 'system:node:node-a');

    // A ServiceAccount token, as a DaemonSet pod would have.
    const sa = await cp.serviceAccountKubeconfig('pier-test', 'agent', host);
    assert.equal(whoami(cp, sa).username, 'system:serviceaccount:pier-test:agent');
    assertForbidden(cp, ['get', 'nodes'], sa, 'system:serviceaccount:pier-test:agent');
    assert.equal(await cp.serviceAccountKubeconfig('pier-test', 'agent', host), sa, 'a second call reuses the account');

    // kubeconfigFor defaults to apiServerUrl, the address inside the netns.
    const inside = JSON.parse(readFileSync(cp.kubeconfigFor('bob'), 'utf8'));
    assert.equal(inside.clusters[0].cluster.server, cp.apiServerUrl);
    assert.throws(() => cp.kubeconfigFor('eve/O=system:masters'), /letters, digits/);
  });

  test('an apiserver restart keeps the state (etcd has it) and the controller manager resumes', async () => {
    const before = getNode(cp, 'node-a');
    const apiserverPids = cp.pids().length;
    await cp.stopApiServer();
    assert.equal(cp.pids().length, apiserverPids - 1, 'only the apiserver stopped');
    // One request, no retries (kubectl retries an EOF from the forwarder for half a minute).
    await assert.rejects(httpsGet(`${cp.hostApiServerUrl}/readyz`, { ca: readFileSync(cp.caFile) }));
    await cp.startApiServer();
    const after = getNode(cp, 'node-a');
    assert.equal(after.metadata.uid, before.metadata.uid);
    assert.deepEqual(after.spec.podCIDRs, before.spec.podCIDRs);
    assert.equal(after.metadata.labels?.['pier.test/watched'], 'yes');
    createNode(cp, 'node-c');
    const c = await waitPodCidrs(cp, 'node-c', 2);
    assert.ok(!c.includes(before.spec.podCIDRs![0]));
  });

  test('stop() ends every process by PID and leaves no file or port', async () => {
    const pids = cp.pids();
    assert.equal(pids.length, 5, 'etcd, apiserver, controller manager, two forwarders');
    const hostPort = new URL(cp.hostApiServerUrl).port;
    assert.match(listeningPorts(), new RegExp(`127\\.0\\.0\\.1:${hostPort}\\b`));
    await cp.stop();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `PID ${pid} is gone`);
    assert.equal(existsSync(cp.dir), false);
    assert.equal(listeningPorts(ns).trim(), '', 'nothing listens in the netns');
    assert.doesNotMatch(listeningPorts(), new RegExp(`127\\.0\\.0\\.1:${hostPort}\\b`));
    await cp.stop();
  });
});

describe('control plane in the host netns, no controller manager', () => {
  let cp: ControlPlane;
  before(async () => {
    cp = await startControlPlane({ name: 'kcp-host' });
  });
  after(async () => {
    await cp?.stop();
  });

  test('the host kubeconfig is the admin one, and Nodes get no podCIDR', async () => {
    assert.equal(cp.hostApiServerUrl, cp.apiServerUrl);
    assert.equal(cp.pids().length, 2, 'etcd and the apiserver');
    createNode(cp, 'lonely');
    assert.equal(getNode(cp, 'lonely').spec.podCIDRs, undefined);
    assert.equal(whoami(cp, cp.adminKubeconfig).username, 'pier-admin');
    const pids = cp.pids();
    await cp.stop();
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
    assert.equal(existsSync(cp.dir), false);
  });
});

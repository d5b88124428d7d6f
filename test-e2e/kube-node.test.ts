// Pier installed the Kubernetes way on a real single-node cluster: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, a kubelet and containerd (Debian 12's 1.6, and a 2.x
// built from Go modules), all in throwaway netns and test dirs (test-e2e/kube/node.ts).
// `kubectl apply -f conf/kubernetes/pier.yaml` with the image `npm run image` makes (pierImage()),
// imported with ctr; pods are busybox (test-e2e/cri/images.ts) with spec.nodeName set. Every check goes through
// kubectl and real traffic.
//
// The node's /etc/cni/net.d, /opt/cni/bin, /var/lib/pier and /run/pier are test dirs
// (node.paths), so the DaemonSet's hostPath mounts land there and this machine's are untouched.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { uniquePrefix } from './helpers.ts';
import { elementLabels } from './nft-state.ts';
import { ensureBuilt } from './cni-harness.ts';
import { debianContainerd, goContainerd, type ContainerdBuild } from './cri/containerd.ts';
import { ensureGoTools } from './cri/go-tools.ts';
import { missingImageDeps, pierImage, testImages } from './cri/images.ts';
import { REPO_ROOT } from './kube/binaries.ts';
import { cidrContains } from './kube/net-util.ts';
import { NODE_IP, startKubeNode, type KubeNode } from './kube/node.ts';

ensureBuilt();
ensureGoTools();
const missing = missingImageDeps();
if (missing) throw new Error(missing);

const MANIFEST = join(REPO_ROOT, 'conf/kubernetes/pier.yaml');
const HOST_PORT = 18081;

/** What must be the same on this machine afterwards; names of other tests' objects are filtered by the caller. */
function machine() {
  const out = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout;
  return {
    netns: out('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter(Boolean),
    links: out('ip', ['-br', 'link']).split('\n').map((l) => l.split(/\s+/)[0]).filter(Boolean),
    nftTables: out('nft', ['list', 'tables']).split('\n').filter(Boolean),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter(Boolean),
    sysctls: ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops', 'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes']
      .map((n) => `${n}=${readFileSync(`/proc/sys/${n}`, 'utf8').trim()}`),
    cgroups: readdirSync('/sys/fs/cgroup').flatMap((h) => {
      try {
        return readdirSync(join('/sys/fs/cgroup', h)).filter((d) => /kubepods|^pier-cri-/.test(d)).map((d) => `${h}/${d}`);
      } catch {
        return [];
      }
    }),
    hostPaths: ['/opt/cni', '/var/log/pods', '/var/log/containers', '/var/lib/kubelet'].filter((p) => existsSync(p)),
  };
}

/** A busybox pod on the node (no scheduler: spec.nodeName), whose container runs `command`. */
function pod(node: KubeNode, name: string, command: string[], ports: Array<{ containerPort: number; hostPort?: number }> = []) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { test: 'kube-node' } },
    spec: {
      nodeName: node.name,
      dnsPolicy: 'Default',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: testImages().busybox.ref, imagePullPolicy: 'Never', command, ports }],
    },
  };
}

// A server answering each connection with "hello from <pod>" (/bin/hello in the busybox image),
// and one that streams a counter, five lines a second, to each connection: an established flow.
const HELLO = ['nc', '-ll', '-p', '8080', '-e', '/bin/hello'];
// (Run by `sh -c`: the \$ keep the outer shell from expanding what the inner one counts with.)
const COUNTER = 'nc -ll -p 9000 -e sh -c "i=0; while echo \\$i; do i=\\$((i+1)); usleep 200000; done"';

// Kubernetes 1.34 runs on both containerds there are here: Debian 12's 1.6 (CRI v1, no
// RuntimeConfig: the kubelet takes the cgroup driver from its own config) and 2.x.
const builds: Array<{ name: string; build: () => ContainerdBuild | undefined; fix: string }> = [
  { name: "Debian's containerd 1.6", build: debianContainerd, fix: 'run scripts/install-cri-deps.sh' },
  { name: 'containerd 2.x from Go modules', build: goContainerd, fix: 'run scripts/go-tools.sh' },
];

for (const b of builds) describe(`a single-node Kubernetes (kubelet, ${b.name}) with Pier installed by kubectl apply`, () => {
  const prefix = uniquePrefix();
  const images = testImages();
  const before0 = machine();
  let node: KubeNode;
  let podCidr = '';
  const ips = new Map<string, string>();

  before(async () => {
    const build = b.build();
    if (!build) throw new Error(`${b.name} is missing: ${b.fix}`);
    node = await startKubeNode({
      prefix,
      build,
      images: [images.busybox, pierImage()],
      env: (dir) => ({ PIER_LOG_FILE: join(dir, 'pier.log'), PIER_LOG_LEVEL: 'debug' }),
    });
  });
  after(async () => {
    await node?.stop();
    const now = machine();
    const ours = (k: keyof ReturnType<typeof machine>) => now[k].filter((x) => !before0[k].includes(x) && (x.includes(prefix) || k === 'sysctls' || k === 'hostPaths' || x === 'table inet pier' || /kubepods/.test(x)));
    const left = (['netns', 'links', 'nftTables', 'mounts', 'sysctls', 'cgroups', 'hostPaths'] as const).flatMap((k) => ours(k).map((x) => `${k}: ${x}`));
    assert.deepEqual(left, [], 'the test left these on the machine');
  });

  const nodeObj = () => node.getJson(['node', node.name]);
  const condition = (type: string) => (nodeObj().status?.conditions ?? []).find((c: any) => c.type === type);
  const waitPodReady = (name: string) => node.kubectl(['wait', '--for=condition=Ready', `pod/${name}`, '--timeout=300s']);
  const podIp = (name: string) => node.getJson(['pod', name]).status?.podIP as string;
  const agentPods = () => node.getJson(['pods', '-n', 'kube-system', '-l', 'app.kubernetes.io/name=pier']).items as any[];
  /** One TCP request from inside a pod (kubectl exec): what the server said. */
  const fetchInPod = (from: string, addr: string, port = 8080) => node.kubectl(['exec', from, '--', 'nc', '-w', '5', addr, String(port)]).trim();
  /** One TCP request from the node netns or the outside netns (where the apiserver lives). */
  const fetchFrom = (where: 'node' | 'outside', addr: string, port: number) => {
    const args = ['busybox', 'nc', '-w', '5', addr, String(port)];
    const r = where === 'node' ? node.exec(args[0], args.slice(1), '') : spawnSync('ip', ['netns', 'exec', node.host.outsideNetns, ...args], { encoding: 'utf8', input: '', timeout: 60_000 });
    return (r.stdout ?? '').trim();
  };
  const store = () => join(node.paths.pierDataDir, 'networks', 'pier');
  const reservationOf = (ip: string) => {
    try {
      return readFileSync(join(store(), ip), 'utf8').split('\r\n')[0];
    } catch {
      return undefined;
    }
  };
  const bridgePorts = () => (JSON.parse(node.exec('ip', ['-j', 'link', 'show', 'master', 'cni0']).stdout || '[]') as any[]).map((l) => l.ifname as string);
  /** Pier's nft elements (each commented with its sandbox ID) in the node netns. */
  const natElements = () => elementLabels(node.host.netns, 'pier');

  /** Waits until the pod's address, veth and nft elements are gone; the failure names what stayed. */
  const waitFreed = async (name: string, ip: string, sandbox: string, ports: number) => {
    const left = () => [
      ...(reservationOf(ip) !== undefined ? [`the reservation of ${ip}`] : []),
      ...(bridgePorts().length !== ports ? [`a veth (bridge ports: ${bridgePorts().join(' ')})`] : []),
      ...natElements().filter((e) => e.startsWith(sandbox)).map((e) => `nft element ${e}`),
    ];
    try {
      await node.waitFor(`${name}'s address, veth and nft elements to go`, () => left().length === 0);
    } catch (err) {
      throw new Error(`${(err as Error).message.split('\n')[0]}; still there: ${left().join(', ')}`, { cause: err });
    }
  };

  it('the node registers NotReady: no CNI config until Pier writes one', async () => {
    await node.waitFor('the Ready condition', () => condition('Ready') !== undefined);
    const ready = condition('Ready');
    assert.equal(ready.status, 'False');
    assert.match(ready.message, /network plugin|cni|NetworkReady/i);
    assert.deepEqual(readdirSync(node.paths.cniConfDir), []);
  });

  it('kubectl apply -f conf/kubernetes/pier.yaml turns the node Ready', async () => {
    node.kubectl(['apply', '-f', MANIFEST]);
    await node.waitFor('the node to be Ready', () => condition('Ready')?.status === 'True');
    node.kubectl(['rollout', 'status', '-n', 'kube-system', 'daemonset/pier', '--timeout=300s']);
    // The init container put the plugin on the node; the agent wrote the node's conflist.
    for (const f of ['pier', 'pier-ipam']) assert.ok(existsSync(join(node.paths.cniBinDir, f)), `/opt/cni/bin/${f}`);
    assert.ok(readdirSync(node.paths.cniConfDir).includes('10-pier.conflist'));
  });

  it("the Node's NetworkUnavailable condition is False, set by Pier's agent", async () => {
    await node.waitFor('NetworkUnavailable', () => condition('NetworkUnavailable') !== undefined);
    const c = condition('NetworkUnavailable');
    assert.equal(c.status, 'False');
    assert.equal(c.reason, 'PierRoutesCreated');
  });

  it("pods get addresses in the node's podCIDR", async () => {
    podCidr = nodeObj().spec.podCIDR;
    assert.ok(podCidr, 'the controller manager gave the node a podCIDR');
    const specs = [
      pod(node, 'web', HELLO, [{ containerPort: 8080, hostPort: HOST_PORT }]),
      pod(node, 'peer', ['sh', '-c', `${HELLO.join(' ')} & ${COUNTER} & wait`], [{ containerPort: 8080, hostPort: HOST_PORT + 1 }]),
    ];
    node.kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: specs }) });
    for (const name of ['web', 'peer']) {
      waitPodReady(name);
      const ip = podIp(name);
      assert.ok(cidrContains(podCidr, `${ip}/32`), `${name}'s ${ip} is in ${podCidr}`);
      assert.ok(reservationOf(ip), `${ip} is reserved in Pier's store`);
      ips.set(name, ip);
    }
    assert.notEqual(ips.get('web'), ips.get('peer'));
  });

  it('pod-to-pod traffic works on the node', () => {
    assert.equal(fetchInPod('web', ips.get('peer')!), 'hello from peer');
    assert.equal(fetchInPod('peer', ips.get('web')!), 'hello from web');
  });

  it('a hostPort answers from an outside netns and from the node', () => {
    assert.equal(fetchFrom('outside', NODE_IP, HOST_PORT), 'hello from web');
    assert.equal(fetchFrom('node', NODE_IP, HOST_PORT), 'hello from web');
  });

  it('a DaemonSet rollout keeps established pod traffic flowing: no ping lost, the TCP stream unbroken', async () => {
    const peer = ips.get('peer')!;
    node.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1', kind: 'List', items: [
          pod(node, 'pinger', ['ping', '-i', '0.2', peer]),
          pod(node, 'streamer', ['nc', peer, '9000']),
        ],
      }),
    });
    waitPodReady('pinger');
    waitPodReady('streamer');
    const seqs = () => [...node.kubectl(['logs', 'pinger']).matchAll(/seq=(\d+)/g)].map((m) => Number(m[1]));
    const counts = () => node.kubectl(['logs', 'streamer']).split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
    await node.waitFor('ping replies and streamed lines', () => seqs().length > 5 && counts().length > 5);

    const oldAgents = agentPods().map((p) => p.metadata.uid as string);
    assert.equal(oldAgents.length, 1);
    node.kubectl(['patch', '-n', 'kube-system', 'daemonset/pier', '--type=merge', '-p',
      JSON.stringify({ spec: { template: { metadata: { annotations: { 'pier.test/rollout': prefix } } } } })]);
    node.kubectl(['rollout', 'status', '-n', 'kube-system', 'daemonset/pier', '--timeout=300s']);
    const newAgents = agentPods().filter((p) => p.status?.phase === 'Running');
    assert.equal(newAgents.length, 1);
    assert.ok(!oldAgents.includes(newAgents[0].metadata.uid), 'the agent pod was replaced');
    // The replacement ran its init container (a new copy of the plugin) and its agent is ready.
    assert.ok(newAgents[0].status.initContainerStatuses?.[0]?.state?.terminated?.exitCode === 0);
    const atRollout = { ping: Math.max(...seqs()), stream: Math.max(...counts()) };
    await node.waitFor('traffic after the rollout', () => Math.max(...seqs()) > atRollout.ping + 10 && Math.max(...counts()) > atRollout.stream + 10);

    const s = seqs();
    const missingSeqs = Array.from({ length: Math.max(...s) + 1 }, (_, i) => i).filter((i) => !s.includes(i));
    assert.deepEqual(missingSeqs, [], 'ping sequence numbers without a reply');
    const c = counts();
    assert.deepEqual(c, Array.from({ length: c.length }, (_, i) => i), 'the TCP stream restarted or skipped');
    for (const name of ['pinger', 'streamer']) {
      assert.equal(node.getJson(['pod', name]).status.containerStatuses[0].restartCount, 0, `${name} restarted`);
    }
  });

  it('kubectl delete pod frees the address, the veth and the NAT elements', async () => {
    const ip = ips.get('web')!;
    const sandbox = reservationOf(ip)!;
    assert.ok(sandbox, `${ip} is reserved`);
    const portsBefore = bridgePorts();
    assert.ok(natElements().some((e) => e.startsWith(sandbox)), "web's hostPort and address elements are there");
    node.kubectl(['delete', 'pod', 'web', '--wait=true', '--timeout=300s']);
    await waitFreed('web', ip, sandbox, portsBefore.length - 1);
    assert.equal(fetchFrom('outside', NODE_IP, HOST_PORT), '', 'the hostPort is closed');
  });

  it('deleting the DaemonSet leaves running pods working, and their DEL still works', async () => {
    node.kubectl(['delete', '-n', 'kube-system', 'daemonset/pier', '--wait=true', '--timeout=300s']);
    await node.waitFor('the agent pod to go', () => agentPods().length === 0);
    const peer = ips.get('peer')!;
    assert.equal(fetchInPod('pinger', peer), 'hello from peer');
    assert.equal(condition('Ready')?.status, 'True');

    assert.equal(fetchFrom('outside', NODE_IP, HOST_PORT + 1), 'hello from peer');
    const sandbox = reservationOf(peer)!;
    assert.ok(sandbox);
    assert.ok(natElements().some((e) => e.startsWith(sandbox)), "peer's hostPort elements are there");
    const portsBefore = bridgePorts();
    node.kubectl(['delete', 'pod', 'peer', '--wait=true', '--timeout=300s']);
    await waitFreed('peer', peer, sandbox, portsBefore.length - 1);
    node.kubectl(['delete', 'pod', '-l', 'test=kube-node', '--wait=true', '--timeout=300s']);
    await node.waitFor('every pod address freed', () => readdirSync(store()).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length === 0);
  });
});

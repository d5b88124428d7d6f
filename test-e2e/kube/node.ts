// A single-node Kubernetes for Pier's tests: etcd, kube-apiserver and kube-controller-manager
// (control-plane.ts), a kubelet, and containerd (the CRI harness, test-e2e/cri/containerd.ts).
// Nothing is mocked; everything runs in throwaway namespaces and test dirs:
//
//   node netns "<prefix>-crihost" (203.0.113.1 on its uplink): containerd, the kubelet, the pods'
//     bridge and nft tables, in a private mount namespace where the node's host paths
//     (/etc/cni/net.d, /opt/cni/bin, /var/lib/pier, /run/pier, /run/netns) are test dirs;
//   outside netns "<prefix>-crout" (203.0.113.2, the other end of the uplink): the control plane,
//     and the "outside" host that hostPort checks connect from.
//
// There is no kube-proxy. The one Service a node needs is `kubernetes` (10.96.0.1:443), which
// in-cluster clients such as a DaemonSet's agent dial: a two-rule nft table in the node netns
// DNATs it to the apiserver, the job kube-proxy does on a real node (see kubeProxyStandIn).
//
//   const node = await startKubeNode({ prefix, build, images: [busybox] });
//   after(() => node.stop());
//   node.kubectl(['get', 'nodes']);
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerdHost, type ContainerdBuild } from '../cri/containerd.ts';
import { testImages, type TestImage } from '../cri/images.ts';
import { REFERENCE_PLUGINS } from '../cri/networks.ts';
import { kubeBinaries } from './binaries.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import { KUBELET_SYSCTLS, kubeletConfig, nodeMountScript } from './kubelet-config.ts';
import { firstHost, sleep } from './net-util.ts';
import { ManagedProcess, throwIfAnyExited } from './process.ts';

export const NODE_IP = '203.0.113.1';
export const API_ADDR = '203.0.113.2';
export const CLUSTER_CIDR = '10.244.0.0/16';

export interface KubeNodeOptions {
  /** Test-unique, short: names the netns, the cgroup, the Node (`<prefix>-node`). */
  prefix: string;
  build: ContainerdBuild;
  /** Imported into containerd beside the pause image (busybox, Pier's image). */
  images?: TestImage[];
  /** containerd's (and so Pier's) environment: PIER_LOG_FILE... */
  env?: (dir: string) => Record<string, string>;
}

/** The node's host paths, as test dirs seen from this (the test's) mount namespace. */
export interface NodePaths {
  cniConfDir: string;
  cniBinDir: string;
  pierDataDir: string;
  runPierDir: string;
}

export class KubeNode {
  readonly name: string;
  readonly host: ContainerdHost;
  cp!: ControlPlane;
  readonly paths: NodePaths;
  private readonly procs: Record<string, ManagedProcess | undefined> = {};
  private stopped = false;

  constructor(readonly o: KubeNodeOptions) {
    this.name = `${o.prefix}-node`;
    const pause = testImages().pause;
    this.host = new ContainerdHost({
      build: o.build,
      prefix: o.prefix,
      // containerd sets up each pod's lo with the loopback plugin, as the node's installer puts
      // it in /opt/cni/bin; Pier's DaemonSet copies pier and pier-ipam beside it.
      cniPlugins: { loopback: join(REFERENCE_PLUGINS, 'loopback') },
      images: [pause, ...(o.images ?? [])],
      sandboxImage: pause.ref,
      env: o.env,
      uplink: { hostAddr: NODE_IP, outsideAddr: API_ADDR },
    });
    const d = this.host.dir;
    this.paths = {
      cniConfDir: this.host.paths.cniConfDir,
      cniBinDir: this.host.paths.cniBinDir,
      pierDataDir: join(d, 'var-lib-pier'),
      runPierDir: join(d, 'run-pier'),
    };
  }

  get dir(): string {
    return this.host.dir;
  }

  async start(): Promise<void> {
    const { host, paths } = this;
    await host.start();
    const d = host.dir;
    for (const p of [paths.pierDataDir, paths.runPierDir, join(d, 'var-lib-cni'), join(d, 'var-lib-kubelet'), join(d, 'sysctl'), join(d, 'overlays'), join(d, 'pod-logs'), join(d, 'volume-plugins')]) mkdirSync(p, { recursive: true });
    const sysctlFiles: Record<string, string> = {};
    for (const [name, value] of Object.entries(KUBELET_SYSCTLS)) {
      sysctlFiles[name] = join(d, 'sysctl', name.replace(/\//g, '.'));
      writeFileSync(sysctlFiles[name], `${value}\n`);
    }
    const script = nodeMountScript({
      binds: {
        '/etc/cni/net.d': paths.cniConfDir,
        '/opt/cni/bin': paths.cniBinDir,
        '/var/lib/pier': paths.pierDataDir,
        '/run/pier': paths.runPierDir,
        // libcni's result cache, host-wide whatever the runtime's config says.
        '/var/lib/cni': join(d, 'var-lib-cni'),
        // The kubelet's device plugin socket, /var/lib/kubelet/device-plugins/kubelet.sock, is
        // hard-wired: --root-dir does not move it.
        '/var/lib/kubelet': join(d, 'var-lib-kubelet'),
      },
      tmpfs: ['/var/log'],
      mkdirs: ['/run/netns', '/run/pier'],
      sysctlFiles,
      overlayDir: join(d, 'overlays'),
    });
    const r = host.exec('sh', ['-c', script]);
    if (r.status !== 0) throw new Error(`node mounts failed: ${r.stderr}`);
    this.makeCgroupRoot();

    this.cp = await startControlPlane({
      name: `${this.o.prefix}-node`,
      netns: host.outsideNetns,
      bindAddress: API_ADDR,
      clusterCidr: CLUSTER_CIDR,
      nodeCidrMaskSize: { v4: 24 },
      // The DaemonSet's pods are bound by the scheduler (the test's own pods name their node).
      scheduler: true,
      // The Node's name resolves nowhere here: logs and exec reach the kubelet by its InternalIP.
      extraArgs: { apiServer: ['--kubelet-preferred-address-types=InternalIP'] },
    });
    // A node has a default route: without one, a connect to the Service address fails with
    // ENETUNREACH before the output hook (and the stand-in's DNAT) ever sees the packet.
    const route = host.exec('ip', ['route', 'add', 'default', 'via', API_ADDR]);
    if (route.status !== 0) throw new Error(`default route in the node netns: ${route.stderr}`);
    const apiPort = Number(new URL(this.cp.apiServerUrl).port);
    this.nft(kubeProxyStandIn(firstHost(this.cp.serviceCidr.split(',')[0]), API_ADDR, apiPort));
    await this.startKubelet();
  }

  /** The kubelet's cgroupRoot must exist: the CRI harness's cgroup, in every hierarchy (cleanup removes it). */
  private makeCgroupRoot(): void {
    for (const h of readdirSync('/sys/fs/cgroup')) {
      const base = join('/sys/fs/cgroup', h);
      if (!existsSync(join(base, 'cgroup.procs'))) continue;
      const dir = join(base, this.host.cgroupParent);
      mkdirSync(dir, { recursive: true });
      // A new v1 cpuset starts with no CPUs and no memory nodes; nothing can join it until set.
      if (h === 'cpuset') {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(base, f)));
      }
    }
  }

  private async startKubelet(): Promise<void> {
    const d = join(this.dir, 'kubelet');
    mkdirSync(d, { recursive: true });
    const kubeconfig = this.cp.kubeconfigFor(`system:node:${this.name}`, ['system:nodes']);
    const config = join(d, 'config.yaml');
    writeFileSync(config, `${JSON.stringify(kubeletConfig({
      runtimeEndpoint: `unix://${this.host.socket}`,
      nodeIp: NODE_IP,
      clientCaFile: this.cp.caFile,
      cgroupRoot: this.host.cgroupParent,
      podLogsDir: join(this.dir, 'pod-logs'),
      volumePluginDir: join(this.dir, 'volume-plugins'),
    }), null, 2)}\n`);
    this.spawnInNode('kubelet', kubeBinaries().kubelet, [
      `--config=${config}`, `--kubeconfig=${kubeconfig}`,
      `--root-dir=${join(d, 'root')}`, `--cert-dir=${join(d, 'pki')}`,
      `--hostname-override=${this.name}`, `--node-ip=${NODE_IP}`,
      '--v=2',
    ]);
    await this.waitFor('the kubelet to register its Node', () => {
      try {
        this.kubectl(['get', 'node', this.name, '-o', 'name']);
        return true;
      } catch {
        return false;
      }
    });
  }

  /** A long-running process in the node's netns and mount namespace, logging to DIR/NAME.log. */
  spawnInNode(name: string, command: string, args: string[], env?: NodeJS.ProcessEnv): ManagedProcess {
    const p = new ManagedProcess({
      name, command: 'nsenter', args: ['-t', String(this.host.holderPid), '-m', '-n', '--', command, ...args],
      logFile: join(this.dir, `${name}.log`), env,
    });
    this.procs[name] = p;
    return p;
  }

  process(name: string): ManagedProcess | undefined {
    return this.procs[name];
  }

  /**
   * Pier installed by hand, the way the DaemonSet's init container and agent container do it:
   * pier and pier-ipam copied into /opt/cni/bin (temp name, then rename), and `pier agent` run as a
   * plain process with the RBAC of conf/pier-agent-rbac.yaml.
   */
  async installPierByHand(pier: string, rbacYaml: string): Promise<void> {
    for (const name of ['pier', 'pier-ipam']) {
      const tmp = join(this.paths.cniBinDir, `.${name}.tmp`);
      copyFileSync(pier, tmp);
      chmodSync(tmp, 0o755);
      renameSync(tmp, join(this.paths.cniBinDir, name));
    }
    this.kubectl(['apply', '-f', rbacYaml]);
    const kc = await this.cp.serviceAccountKubeconfig('kube-system', 'pier-agent');
    this.spawnInNode('pier-agent', pier, ['agent', '--kubeconfig', kc, '--node-name', this.name, '--cluster-cidr', CLUSTER_CIDR]);
  }

  kubectl(args: string[], o: { input?: string } = {}): string {
    return this.cp.kubectl(args, o);
  }

  /** kubectl get -o json, parsed. */
  getJson<T = any>(args: string[]): T {
    return JSON.parse(this.kubectl(['get', ...args, '-o', 'json'])) as T;
  }

  /** Runs a command in the node's netns and mount namespace. */
  exec(cmd: string, args: string[], input?: string) {
    return this.host.exec(cmd, args, input);
  }

  private nft(script: string): void {
    const r = this.exec('nft', ['-f', '-'], script);
    if (r.status !== 0) throw new Error(`nft in the node netns: ${r.stderr}`);
  }

  /** Polls cond (generous deadline); fails early with a log tail when a process of ours exits. */
  async waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 300_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      throwIfAnyExited(Object.values(this.procs));
      if (await cond()) return;
      if (Date.now() > deadline) {
        throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}; kubelet log:\n${this.procs.kubelet?.logTail() ?? '(none)'}`);
      }
      await sleep(250);
    }
  }

  /** Ends the agent and the kubelet, the control plane, then containerd and its pods; removes every dir. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const name of ['pier-agent', 'kubelet']) await this.procs[name]?.stop();
    for (const p of Object.values(this.procs)) await p?.stop();
    await this.cp?.stop();
    // Stops and removes every pod sandbox through CRI (Pier's DEL), then containerd, shims,
    // cgroups (the kubelet's kubepods tree is under the same root), the netns, the dir.
    await this.host.cleanup();
  }
}

/**
 * The kube-proxy stand-in: the `kubernetes` Service's ClusterIP:443 DNATed to the apiserver, for
 * traffic of the node (output: hostNetwork pods such as Pier's agent) and of its pods (prerouting).
 */
export function kubeProxyStandIn(serviceIp: string, apiAddr: string, apiPort: number): string {
  const rule = `ip daddr ${serviceIp} tcp dport 443 dnat to ${apiAddr}:${apiPort}`;
  return `table ip pier-test-kube-proxy {
  chain output { type nat hook output priority -100; ${rule}; }
  chain prerouting { type nat hook prerouting priority -100; ${rule}; }
}
`;
}

/** Starts a node; on failure stops what was started and rethrows. */
export async function startKubeNode(o: KubeNodeOptions): Promise<KubeNode> {
  const node = new KubeNode(o);
  try {
    await node.start();
    return node;
  } catch (err) {
    await node.stop();
    throw err;
  }
}

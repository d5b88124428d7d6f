// A real Kubernetes control plane for Pier's tests: etcd, kube-apiserver and (optionally)
// kube-controller-manager, built from Go modules by scripts/kube-build.sh, started with fresh
// certificates in a temporary folder, optionally inside an existing netns. Nothing is mocked.
//
//   const cp = await startControlPlane({ name: 'agent', netns, clusterCidr: '10.244.0.0/16' });
//   after(() => cp.stop());
//   cp.kubectl(['get', 'nodes']);
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeBinaries, REPO_ROOT } from './binaries.ts';
import { firstHost, freePorts, httpsGet, httpsUrl, sleep, splitFamilies } from './net-util.ts';
import { checkSubjectName, createCa, createServiceAccountKeys, issueCert, writeKubeconfig, type KeyPair, type Pki } from './pki.ts';
import { ManagedProcess, throwIfAnyExited } from './process.ts';

export { kubeBinaries } from './binaries.ts';
export type { KubeBinaries } from './binaries.ts';

export interface ControlPlaneOptions {
  /** Test-unique prefix of the temporary folder (letters, digits, '-'; at most 24). */
  name: string;
  /** Run etcd, kube-apiserver and kube-controller-manager inside this existing netns; default: host netns. */
  netns?: string;
  /** Where the apiserver listens (an address of the netns); default 127.0.0.1. */
  bindAddress?: string;
  /** e.g. "10.244.0.0/16" or "10.244.0.0/16,fd00:244::/56": kube-controller-manager allocates node podCIDRs. */
  clusterCidr?: string;
  nodeCidrMaskSize?: { v4?: number; v6?: number };
  /** Default 10.96.0.0/16, plus fd00:10:96::/112 when clusterCidr has an IPv6 range. */
  serviceCidr?: string;
  /** Default: true when clusterCidr is given. */
  controllerManager?: boolean;
  /**
   * Run kube-scheduler too (default false). A pod that names its node needs none, but a
   * DaemonSet's pods do: the DaemonSet controller gives them node affinity, the scheduler binds them.
   */
  scheduler?: boolean;
  /** Extra flags, appended after the harness's own (a later flag wins). */
  extraArgs?: { apiServer?: string[]; controllerManager?: string[]; scheduler?: string[]; etcd?: string[] };
  /** How long to wait for each component to become ready; default 300 s (the machine may be busy). */
  readyTimeoutMs?: number;
}

export interface ControlPlane {
  /** Everything it wrote lives here (certificates, kubeconfigs, etcd data, logs *.log). */
  dir: string;
  netns?: string;
  /** https://<bindAddress>:<port>: what a client inside the netns (or on the host without netns) uses. */
  apiServerUrl: string;
  /** A URL of the same apiserver that the test process in the host netns reaches (a forwarder when netns is set). */
  hostApiServerUrl: string;
  /** system:masters; server = apiServerUrl. */
  adminKubeconfig: string;
  /** system:masters; server = hostApiServerUrl. */
  hostKubeconfig: string;
  caFile: string;
  /** The cluster's service CIDR(s) and, when given, cluster CIDR(s), as passed to the components. */
  serviceCidr: string;
  clusterCidr?: string;
  /** A kubeconfig for a client certificate of user (CN) and groups (O), signed by the cluster CA. server defaults to apiServerUrl. */
  kubeconfigFor(user: string, groups?: string[], server?: string): string;
  /** A kubeconfig with a token of ServiceAccount namespace/name (created when missing). server defaults to apiServerUrl. */
  serviceAccountKubeconfig(namespace: string, name: string, server?: string): Promise<string>;
  /** /usr/bin/kubectl with hostKubeconfig (or opts.kubeconfig); returns stdout, throws with stderr on failure. */
  kubectl(args: string[], opts?: { input?: string; kubeconfig?: string }): string;
  /** SIGTERM the apiserver only and wait until it has exited (its port is closed). */
  stopApiServer(): Promise<void>;
  /** Start it again with the same data and certificates; waits until /readyz is ok. */
  startApiServer(): Promise<void>;
  /** PIDs of every process it runs now (etcd, apiserver, controller manager, forwarders). */
  pids(): number[];
  /** End every process it started, by PID, and remove dir. Safe to call twice. */
  stop(): Promise<void>;
}

const KUBECTL = '/usr/bin/kubectl';

export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  if (!/^[A-Za-z0-9-]{1,24}$/.test(opts.name)) throw new Error(`control plane name ${JSON.stringify(opts.name)}: letters, digits and '-', at most 24`);
  const bin = kubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), `pier-kube-${opts.name}-`));
  let cp: Cluster | undefined;
  try {
    cp = new Cluster(opts, bin, dir);
    await cp.start();
    return cp;
  } catch (err) {
    if (cp) await cp.stop();
    else rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

class Cluster implements ControlPlane {
  readonly dir: string;
  readonly netns?: string;
  readonly apiServerUrl: string;
  hostApiServerUrl = '';
  readonly adminKubeconfig: string;
  readonly hostKubeconfig: string;
  readonly caFile: string;
  readonly serviceCidr: string;
  readonly clusterCidr?: string;
  private readonly pki: Pki;
  private readonly admin: KeyPair;
  private readonly bindAddress: string;
  private readonly ports: { etcdClient: number; etcdPeer: number; api: number; kcm: number; scheduler: number };
  private kcmHealthUrl = '';
  private apiServerArgs: string[] = [];
  private readonly readyTimeoutMs: number;
  private stopped = false;
  private minted = 0;
  private readonly procs: Record<string, ManagedProcess | undefined> = {};

  constructor(
    private readonly opts: ControlPlaneOptions,
    private readonly bin: ReturnType<typeof kubeBinaries>,
    dir: string,
  ) {
    this.dir = dir;
    this.netns = opts.netns;
    this.bindAddress = opts.bindAddress ?? '127.0.0.1';
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 300_000;
    const cluster = opts.clusterCidr ? splitFamilies(opts.clusterCidr) : undefined;
    this.clusterCidr = opts.clusterCidr;
    this.serviceCidr =
      opts.serviceCidr ?? (cluster?.v6 ? (cluster.v4 ? '10.96.0.0/16,fd00:10:96::/112' : 'fd00:10:96::/112') : '10.96.0.0/16');
    if (opts.netns) execFileSync('ip', ['-n', opts.netns, 'link', 'set', 'lo', 'up']);
    const [etcdClient, etcdPeer, api, kcm, scheduler] = freePorts(5, opts.netns);
    this.ports = { etcdClient, etcdPeer, api, kcm, scheduler };
    this.apiServerUrl = httpsUrl(this.bindAddress, api);

    this.pki = createCa(dir, `pier-test-ca-${opts.name}`);
    this.caFile = this.pki.caCert;
    this.admin = issueCert(this.pki, { name: 'admin', commonName: 'pier-admin', organizations: ['system:masters'] });
    this.adminKubeconfig = writeKubeconfig(join(dir, 'admin.kubeconfig'), {
      server: this.apiServerUrl, caFile: this.caFile, user: 'pier-admin', credentials: this.admin,
    });
    this.hostKubeconfig = join(dir, 'host.kubeconfig');
  }

  async start(): Promise<void> {
    const { dir, opts, bin, ports } = this;
    const services = splitFamilies(this.serviceCidr);
    const serving = issueCert(this.pki, {
      name: 'apiserver',
      commonName: 'kube-apiserver',
      altNames: [
        ...new Set([this.bindAddress, '127.0.0.1', ...[services.v4, services.v6].filter((c): c is string => !!c).map(firstHost)]),
      ].map((ip) => `IP:${ip}`).concat(
        ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'].map((d) => `DNS:${d}`),
      ),
    });
    const kubeletClient = issueCert(this.pki, { name: 'apiserver-kubelet-client', commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'] });
    const sa = createServiceAccountKeys(dir);

    // Reachability from the host netns: a forwarder pair (forward.mjs), never an address or route.
    const kcmHost = '127.0.0.1';
    let kcmPort = ports.kcm;
    if (opts.netns) {
      const fwd = join(REPO_ROOT, 'test-e2e/kube/forward.mjs');
      const apiSock = join(dir, 'api.sock');
      const kcmSock = join(dir, 'kcm.sock');
      if (kcmSock.length > 100) throw new Error(`socket path too long for a Unix socket: ${kcmSock}`);
      const inner = this.spawn('forward-inner', process.execPath,
        [fwd, 'inner', `${apiSock}=${this.apiServerUrl.replace(/^https:\/\//, '')}`, `${kcmSock}=127.0.0.1:${ports.kcm}`], { netns: opts.netns, pipeStdout: true });
      await inner.readLine();
      const outer = this.spawn('forward-outer', process.execPath, [fwd, 'outer', `127.0.0.1=${apiSock}`, `127.0.0.1=${kcmSock}`], { pipeStdout: true });
      const { ports: hostPorts } = JSON.parse(await outer.readLine()) as { ports: number[] };
      this.hostApiServerUrl = httpsUrl('127.0.0.1', hostPorts[0]);
      kcmPort = hostPorts[1];
    } else {
      this.hostApiServerUrl = this.apiServerUrl;
    }
    writeKubeconfig(this.hostKubeconfig, { server: this.hostApiServerUrl, caFile: this.caFile, user: 'pier-admin', credentials: this.admin });

    const etcdUrl = `http://127.0.0.1:${ports.etcdClient}`;
    const peerUrl = `http://127.0.0.1:${ports.etcdPeer}`;
    this.spawn('etcd', bin.etcd, [
      '--name=pier', `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=pier=${peerUrl}`,
      // A test cluster on a shared, busy disk: durability across a host crash buys nothing here.
      '--unsafe-no-fsync',
      ...(opts.extraArgs?.etcd ?? []),
    ], { netns: opts.netns });

    const loopback = this.bindAddress.startsWith('127.') || this.bindAddress === '::1';
    this.apiServerArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${this.bindAddress}`, `--secure-port=${ports.api}`, `--advertise-address=${this.bindAddress}`,
      // The kubernetes Service's endpoints cannot be a loopback address (validation refuses it).
      ...(loopback ? ['--endpoint-reconciler-type=none'] : []),
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${serving.cert}`, `--tls-private-key-file=${serving.key}`,
      `--client-ca-file=${this.caFile}`,
      `--kubelet-client-certificate=${kubeletClient.cert}`, `--kubelet-client-key=${kubeletClient.key}`,
      `--service-cluster-ip-range=${this.serviceCidr}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${sa.pub}`, `--service-account-signing-key-file=${sa.key}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      '--profiling=false',
      // Without it, SIGTERM leaves open watches (the controller manager's) to the HTTP server's
      // shutdown timeout, a full minute, before the process exits; with it they are closed.
      '--shutdown-watch-termination-grace-period=2s',
      ...(opts.extraArgs?.apiServer ?? []),
    ];
    this.spawnApiServer();
    await this.waitApiServerReady();

    const cluster = opts.clusterCidr ? splitFamilies(opts.clusterCidr) : undefined;
    if (opts.controllerManager ?? Boolean(cluster)) {
      const kcmCert = issueCert(this.pki, { name: 'controller-manager', commonName: 'system:kube-controller-manager' });
      const kc = writeKubeconfig(join(dir, 'controller-manager.kubeconfig'), {
        server: this.apiServerUrl, caFile: this.caFile, user: 'system:kube-controller-manager', credentials: kcmCert,
      });
      const cidrArgs: string[] = [];
      if (cluster) {
        cidrArgs.push('--allocate-node-cidrs=true', `--cluster-cidr=${opts.clusterCidr}`);
        const { v4, v6 } = opts.nodeCidrMaskSize ?? {};
        // kube-controller-manager refuses the per-family flags on a single-stack cluster.
        if (cluster.v4 && cluster.v6) {
          if (v4) cidrArgs.push(`--node-cidr-mask-size-ipv4=${v4}`);
          if (v6) cidrArgs.push(`--node-cidr-mask-size-ipv6=${v6}`);
        } else if (cluster.v4 ? v4 : v6) {
          cidrArgs.push(`--node-cidr-mask-size=${cluster.v4 ? v4 : v6}`);
        }
      }
      this.spawn('kube-controller-manager', bin.controllerManager, [
        `--kubeconfig=${kc}`, `--authentication-kubeconfig=${kc}`, `--authorization-kubeconfig=${kc}`,
        '--bind-address=127.0.0.1', `--secure-port=${ports.kcm}`, `--cert-dir=${join(dir, 'controller-manager-certs')}`,
        '--leader-elect=false',
        '--controllers=*',
        '--use-service-account-credentials=true',
        `--service-account-private-key-file=${sa.key}`, `--root-ca-file=${this.caFile}`,
        `--cluster-signing-cert-file=${this.caFile}`, `--cluster-signing-key-file=${this.pki.caKey}`,
        `--service-cluster-ip-range=${this.serviceCidr}`,
        ...cidrArgs,
        '--profiling=false',
        ...(opts.extraArgs?.controllerManager ?? []),
      ], { netns: opts.netns });
      this.kcmHealthUrl = `${httpsUrl(kcmHost, kcmPort)}/healthz`;
      // Its serving certificate is self-signed (in --cert-dir): checked for liveness, not identity.
      await this.waitFor('kube-controller-manager /healthz', async () => (await httpsGet(this.kcmHealthUrl, { insecure: true })).status === 200);
    }

    if (opts.scheduler) {
      const cert = issueCert(this.pki, { name: 'scheduler', commonName: 'system:kube-scheduler' });
      const kc = writeKubeconfig(join(dir, 'scheduler.kubeconfig'), {
        server: this.apiServerUrl, caFile: this.caFile, user: 'system:kube-scheduler', credentials: cert,
      });
      this.spawn('kube-scheduler', bin.scheduler, [
        `--kubeconfig=${kc}`, `--authentication-kubeconfig=${kc}`, `--authorization-kubeconfig=${kc}`,
        '--bind-address=127.0.0.1', `--secure-port=${ports.scheduler}`, '--leader-elect=false', '--profiling=false',
        ...(opts.extraArgs?.scheduler ?? []),
      ], { netns: opts.netns });
      // Up when its secure port accepts a connection (inside the netns: bash's /dev/tcp, no
      // forwarder for a port only this check uses). It binds pods once its informers synced.
      const port = ports.scheduler;
      const netnsArgs = opts.netns ? ['ip', ['netns', 'exec', opts.netns, 'bash']] as const : ['bash', []] as const;
      await this.waitFor('kube-scheduler', async () => {
        try {
          execFileSync(netnsArgs[0], [...netnsArgs[1], '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`], { stdio: 'ignore' });
          return true;
        } catch {
          return false;
        }
      });
    }
  }

  private spawn(name: string, command: string, args: string[], o: { netns?: string; pipeStdout?: boolean } = {}): ManagedProcess {
    const p = new ManagedProcess({ name, command, args, logFile: join(this.dir, `${name}.log`), netns: o.netns, pipeStdout: o.pipeStdout });
    this.procs[name] = p;
    return p;
  }

  private spawnApiServer(): void {
    this.spawn('kube-apiserver', this.bin.apiserver, this.apiServerArgs, { netns: this.opts.netns });
  }

  /** Polls check until it returns true; fails early, with a log tail, when a process of ours exits. */
  private async waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    let last = '';
    for (;;) {
      throwIfAnyExited(Object.values(this.procs));
      try {
        if (await check()) return;
      } catch (err) {
        // A certificate that does not verify will not start verifying: say so now, not in 5 minutes.
        const code = (err as { code?: string }).code ?? '';
        if (/^ERR_TLS_|CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
          throw new Error(`${what}: TLS verification failed (${code}): ${(err as Error).message}`, { cause: err });
        }
        last = (err as Error).message;
      }
      if (Date.now() > deadline) {
        const api = this.procs['kube-apiserver'];
        throw new Error(`${what} not ready after ${this.readyTimeoutMs / 1000} s (last error: ${last || 'none'})` +
          (api ? `\nlast lines of ${api.logFile}:\n${api.logTail()}` : ''));
      }
      await sleep(250);
    }
  }

  private async waitApiServerReady(): Promise<void> {
    const tls = { ca: readFileSync(this.caFile), cert: readFileSync(this.admin.cert), key: readFileSync(this.admin.key) };
    await this.waitFor('kube-apiserver /readyz', async () => {
      const r = await httpsGet(`${this.hostApiServerUrl}/readyz`, tls);
      return r.status === 200 && r.body.trim() === 'ok';
    });
  }

  kubeconfigFor(user: string, groups: string[] = [], server = this.apiServerUrl): string {
    checkSubjectName('user', user);
    const stem = `user-${++this.minted}-${user.replace(/[^A-Za-z0-9._-]/g, '_')}`;
    const pair = issueCert(this.pki, { name: stem, commonName: user, organizations: groups });
    return writeKubeconfig(join(this.dir, `${stem}.kubeconfig`), { server, caFile: this.caFile, user, credentials: pair });
  }

  async serviceAccountKubeconfig(namespace: string, name: string, server = this.apiServerUrl): Promise<string> {
    checkSubjectName('namespace', namespace);
    checkSubjectName('service account', name);
    // get-or-create, so a second call for the same account works.
    for (const [kind, obj] of [['namespace', namespace], ['serviceaccount', name]] as const) {
      const ns = kind === 'serviceaccount' ? ['-n', namespace] : [];
      const yaml = this.kubectl(['create', kind, obj, ...ns, '--dry-run=client', '-o', 'json']);
      this.kubectl(['apply', '-f', '-'], { input: yaml });
    }
    const token = this.kubectl(['create', 'token', name, '-n', namespace, '--duration=24h']).trim();
    return writeKubeconfig(join(this.dir, `sa-${namespace}-${name}.kubeconfig`), {
      server, caFile: this.caFile, user: `system:serviceaccount:${namespace}:${name}`, credentials: { token },
    });
  }

  kubectl(args: string[], o: { input?: string; kubeconfig?: string } = {}): string {
    try {
      return execFileSync(KUBECTL, ['--kubeconfig', o.kubeconfig ?? this.hostKubeconfig, ...args], {
        encoding: 'utf8', input: o.input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 120_000,
      });
    } catch (err) {
      const e = err as { stderr?: string; status?: number };
      throw new Error(`kubectl ${args.join(' ')} failed (exit ${e.status}): ${e.stderr?.trim() ?? String(err)}`, { cause: err });
    }
  }

  async stopApiServer(): Promise<void> {
    await this.procs['kube-apiserver']?.stop(60_000);
    this.procs['kube-apiserver'] = undefined;
  }

  async startApiServer(): Promise<void> {
    if (this.procs['kube-apiserver']?.running) throw new Error('kube-apiserver is already running');
    this.spawnApiServer();
    await this.waitApiServerReady();
  }

  pids(): number[] {
    return Object.values(this.procs).filter((p): p is ManagedProcess => !!p?.running).map((p) => p.pid);
  }

  async stop(): Promise<void> {
    // Clients first, then the apiserver, then its store; the forwarders last (they serve no one then).
    for (const name of ['kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd', 'forward-outer', 'forward-inner']) {
      await this.procs[name]?.stop();
    }
    for (const p of Object.values(this.procs)) await p?.stop();
    if (!this.stopped) rmSync(this.dir, { recursive: true, force: true });
    this.stopped = true;
  }
}

// A throwaway containerd for the CRI tests (and, later, a kubelet): it runs inside a netns that
// plays the host, so the CNI plugins it runs put their bridge, veths and nft table there and
// nothing on this machine changes; every path it uses is under one test dir.
//
// Namespaces: a holder process (`sleep infinity` in the host netns) owns the host netns and a
// private mount namespace (a slave of this machine's, with its own tmpfs on /run); containerd is started in both with nsenter, and so are its shims,
// the pods and the plugins. A containerd killed and started again finds the mounts it made
// (pod netns under its state dir, rootfs overlays) where it left them, as on a real host, and
// the mounts never reach this machine's mount table: they go when the holder and the last shim
// are gone.
//
// Cleanup (`cleanup()`, also when a test failed half-way): pods stopped and removed through CRI,
// containerd stopped, leftover shims (found by the socket in their command line) and pod
// processes (found in the test's cgroup) ended by PID, the cgroups removed, the holder ended,
// libcni's cache entries of every sandbox this containerd ever handled removed, the netns
// deleted, the dir removed.
import { type ChildProcess, type SpawnOptions, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CriClient, type PodSandboxConfig } from './cri-client.ts';
import { configV2, configV3 } from './containerd-config.ts';
import { containerd2Dir, CONTAINERD2_VERSION } from './go-tools.ts';
import type { TestImage } from './images.ts';

/** libcni's cache, host-wide whatever the runtime's config says: `<network>-<containerID>-<ifname>`. */
export const CNI_CACHE_DIR = '/var/lib/cni/results';
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ContainerdBuild {
  /** For test names: `containerd 1.6.20 (Debian)`. */
  label: string;
  containerd: string;
  ctr: string;
  /** Prepended to PATH, so containerd finds the shim of its own build. */
  binDir?: string;
  configVersion: 2 | 3;
}

/** Debian 12's containerd (apt), if installed. */
export function debianContainerd(): ContainerdBuild | undefined {
  if (!existsSync('/usr/bin/containerd') || !existsSync('/usr/bin/ctr')) return undefined;
  const v = /containerd\S* (\S+) (\d+\.\d+\.\d+)/.exec(spawnSync('/usr/bin/containerd', ['--version'], { encoding: 'utf8' }).stdout);
  return { label: `containerd ${v?.[2] ?? '?'} (Debian)`, containerd: '/usr/bin/containerd', ctr: '/usr/bin/ctr', configVersion: 2 };
}

/** The containerd 2.x that scripts/go-tools.sh built from Go modules, if it is there. */
export function goContainerd(): ContainerdBuild | undefined {
  const dir = containerd2Dir();
  if (!['containerd', 'ctr', 'containerd-shim-runc-v2'].every((b) => existsSync(join(dir, b)))) return undefined;
  return { label: `containerd ${CONTAINERD2_VERSION.slice(1)} (Go modules)`, containerd: join(dir, 'containerd'), ctr: join(dir, 'ctr'), binDir: dir, configVersion: 3 };
}

export interface ContainerdHostOptions {
  build: ContainerdBuild;
  /** Test-unique, short (it names the netns, links and the cgroup): `pt1a2b`. */
  prefix: string;
  /**
   * The CNI network config list containerd's CRI plugin loads, made for the test dir. None: the
   * conf dir starts empty (a node whose CNI writes it later, as a DaemonSet does), and start()
   * does not wait for NetworkReady.
   */
  conflist?: (dir: string) => Record<string, unknown>;
  /** CNI plugins by the name containerd execs them under: name -> executable (symlinked). */
  cniPlugins: Record<string, string>;
  images: TestImage[];
  sandboxImage: string;
  /** Added to containerd's environment, which it passes on to the CNI plugins (PIER_LOG_FILE...). */
  env?: (dir: string) => Record<string, string>;
  /**
   * An "outside" netns joined to the host netns by a veth pair: the host holds `hostAddr`/24 on
   * its end (its own address, as a node's uplink) and the outside end `outsideAddr`/24.
   */
  uplink?: { hostAddr: string; outsideAddr: string };
}

export class ContainerdHost {
  readonly dir: string;
  readonly netns: string;
  readonly outsideNetns: string;
  readonly socket: string;
  readonly cgroupParent: string;
  readonly logFile: string;
  readonly paths;
  readonly cri: CriClient;
  private holder: ChildProcess | undefined;
  private daemon: ChildProcess | undefined;
  private readonly sandboxIds = new Set<string>();

  constructor(readonly o: ContainerdHostOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `${o.prefix}-cri-`));
    this.netns = `${o.prefix}-crihost`;
    this.outsideNetns = `${o.prefix}-crout`;
    this.socket = join(this.dir, 'containerd.sock');
    this.cgroupParent = `/pier-cri-${o.prefix}`;
    this.logFile = join(this.dir, 'containerd.log');
    this.paths = {
      root: join(this.dir, 'root'),
      state: join(this.dir, 'state'),
      socket: this.socket,
      optDir: join(this.dir, 'opt'),
      cniBinDir: join(this.dir, 'cni-bin'),
      cniConfDir: join(this.dir, 'net.d'),
    };
    this.cri = new CriClient(this.socket);
  }

  get pid(): number | undefined {
    return this.daemon?.exitCode === null ? this.daemon.pid : undefined;
  }

  /**
   * Makes the host netns and the dirs, starts containerd, imports the images; waits for
   * NetworkReady. A failure says what containerd logged last.
   */
  async start(): Promise<void> {
    try {
      await this.setUp();
    } catch (err) {
      throw new Error(`${err instanceof Error ? err.message : err}\ncontainerd log:\n${this.logTail()}`, { cause: err });
    }
  }

  private async setUp(): Promise<void> {
    const { o, paths } = this;
    for (const d of [paths.cniBinDir, paths.cniConfDir, join(this.dir, 'logs')]) mkdirSync(d, { recursive: true });
    for (const [name, target] of Object.entries(o.cniPlugins)) symlinkSync(target, join(paths.cniBinDir, name));
    if (o.conflist) this.writeConflist(o.conflist(this.dir));
    const settings = { sandboxImage: o.sandboxImage };
    writeFileSync(join(this.dir, 'config.toml'), o.build.configVersion === 3 ? configV3(paths, settings) : configV2(paths, settings));

    sh('ip', ['netns', 'add', this.netns]);
    sh('ip', ['-n', this.netns, 'link', 'set', 'lo', 'up']);
    if (o.uplink) {
      const [h, out] = [`${o.prefix}u0`, `${o.prefix}u1`];
      sh('ip', ['netns', 'add', this.outsideNetns]);
      sh('ip', ['-n', this.netns, 'link', 'add', h, 'type', 'veth', 'peer', 'name', out, 'netns', this.outsideNetns]);
      sh('ip', ['-n', this.netns, 'addr', 'add', `${o.uplink.hostAddr}/24`, 'dev', h]);
      sh('ip', ['-n', this.netns, 'link', 'set', h, 'up']);
      sh('ip', ['-n', this.outsideNetns, 'addr', 'add', `${o.uplink.outsideAddr}/24`, 'dev', out]);
      sh('ip', ['-n', this.outsideNetns, 'link', 'set', out, 'up']);
      sh('ip', ['-n', this.outsideNetns, 'link', 'set', 'lo', 'up']);
    }
    // Not `ip netns exec`: it remounts /sys for the netns, which hides the cgroup mounts runc needs.
    // A tmpfs on /run: the runtime's hard-wired paths there (/run/containerd/s for shim sockets,
    // runc's state) stay private, and nothing is left behind on this machine.
    const holderScript = 'mount -t tmpfs -o mode=0755 pier-test-run /run && exec sleep infinity';
    this.holder = spawn('nsenter', [`--net=/run/netns/${this.netns}`, '--', 'unshare', '--mount', '--propagation', 'slave', '--', 'sh', '-c', holderScript], {
      stdio: 'ignore',
      detached: true,
    });
    const hostIno = statSync(`/run/netns/${this.netns}`).ino;
    const ownMnt = readlinkSync('/proc/self/ns/mnt');
    await waitFor('the netns holder', () => {
      if (this.holder!.exitCode !== null) throw new Error(`the netns holder exited (${this.holder!.exitCode})`);
      try {
        const pid = this.holder!.pid;
        return readlinkSync(`/proc/${pid}/ns/net`) === `net:[${hostIno}]` && readlinkSync(`/proc/${pid}/ns/mnt`) !== ownMnt && readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep');
      } catch {
        return false;
      }
    });
    await this.startDaemon();
    for (const image of o.images) this.ctr(['images', 'import', image.archive]);
    if (o.conflist) await waitFor('NetworkReady', async () => (await this.cri.conditions()).NetworkReady?.status === true, 60_000);
  }

  /** The holder's PID: `nsenter -t PID -m -n` enters this host's netns and mount namespace. */
  get holderPid(): number {
    const h = this.holder;
    if (!h?.pid || h.exitCode !== null || h.signalCode !== null) throw new Error('the netns holder is not running');
    return h.pid;
  }

  /** Replaces the network config (containerd reloads it). */
  writeConflist(conflist: Record<string, unknown>): void {
    for (const f of readdirSync(this.paths.cniConfDir)) rmSync(join(this.paths.cniConfDir, f));
    writeFileSync(join(this.paths.cniConfDir, `10-${String(conflist.name)}.conflist`), `${JSON.stringify(conflist, null, 2)}\n`);
  }

  /** Starts containerd in the host's namespaces; resolves once CRI answers. */
  async startDaemon(): Promise<void> {
    const log = openSync(this.logFile, 'a');
    try {
      const env = { PATH: this.o.build.binDir ? `${this.o.build.binDir}:${SYSTEM_PATH}` : SYSTEM_PATH, HOME: '/root', ...this.o.env?.(this.dir) };
      this.daemon = spawn('nsenter', ['-t', String(this.holder!.pid), '-m', '-n', '--', this.o.build.containerd, '--config', join(this.dir, 'config.toml')], {
        stdio: ['ignore', log, log],
        env,
        detached: true,
      });
    } finally {
      closeSync(log);
    }
    const d = this.daemon;
    await waitFor('containerd to answer CRI Version', async () => {
      if (d.exitCode !== null) throw new Error(`containerd exited (${d.exitCode}): ${this.logTail()}`);
      return this.cri.version().then(() => true, () => false);
    }, 60_000);
  }

  /** Ends containerd with SIGKILL (its shims and pods live on); resolves when it is gone. */
  async kill(): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const gone = new Promise((res) => d.once('exit', res));
    process.kill(d.pid!, 'SIGKILL');
    await gone;
  }

  /** Runs a command in the host's netns and mount namespace. */
  exec(cmd: string, args: string[], input?: string): SpawnSyncReturns<string> {
    return spawnSync('nsenter', ['-t', String(this.holder!.pid), '-m', '-n', '--', cmd, ...args], { encoding: 'utf8', input, timeout: 60_000 });
  }

  /**
   * Starts a long-running process (a kubelet, a server) in the host's netns and mount namespace;
   * nsenter execs it, so the child's PID is the process's own, for the caller to end.
   */
  spawnInHost(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('nsenter', ['-t', String(this.holder!.pid), '-m', '-n', '--', cmd, ...args], opts);
  }

  /** Runs a command in the outside netns (see `uplink`). */
  execOutside(cmd: string, args: string[]): SpawnSyncReturns<string> {
    return spawnSync('ip', ['netns', 'exec', this.outsideNetns, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
  }

  ctr(args: string[]): string {
    return sh(this.o.build.ctr, ['-a', this.socket, '-n', 'k8s.io', ...args]);
  }

  /** A pod sandbox config in this host's cgroup, with its logs under the test dir. */
  sandboxConfig(name: string, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig {
    return {
      metadata: { name, uid: `${this.o.prefix}-${name}`, namespace: 'pier-test', attempt: 0 },
      hostname: name,
      log_directory: join(this.dir, 'logs', name),
      linux: { cgroup_parent: this.cgroupParent, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
      ...extra,
    };
  }

  /** RunPodSandbox, remembering the ID for cleanup. */
  async runPod(config: PodSandboxConfig): Promise<string> {
    const id = await this.cri.runPodSandbox(config);
    this.sandboxIds.add(id);
    return id;
  }

  /** Every sandbox ID this containerd handled: run through runPod, or named in its log. */
  knownSandboxIds(): string[] {
    const ids = new Set(this.sandboxIds);
    try {
      for (const m of readFileSync(this.logFile, 'utf8').matchAll(/\b[0-9a-f]{64}\b/g)) ids.add(m[0]);
    } catch {
      /* no log yet */
    }
    return [...ids];
  }

  /** libcni cache entries (file names) of the given sandboxes (default: every known one). */
  cniCacheEntries(ids = this.knownSandboxIds()): string[] {
    let names: string[];
    try {
      names = readdirSync(CNI_CACHE_DIR);
    } catch {
      return [];
    }
    return names.filter((n) => ids.some((id) => n.includes(`-${id}-`)));
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no containerd log)';
    }
  }

  /** Leaves the machine as it was. Never throws; every step gets its chance. */
  async cleanup(): Promise<void> {
    const step = async (fn: () => unknown) => {
      try {
        await fn();
      } catch {
        /* keep going */
      }
    };
    if (this.pid) {
      await step(async () => {
        for (const p of await this.cri.listPodSandbox()) {
          await this.cri.stopPodSandbox(p.id).catch(() => {});
          await this.cri.removePodSandbox(p.id).catch(() => {});
        }
      });
    }
    this.cri.close();
    await step(async () => {
      const d = this.daemon;
      if (!d || d.exitCode !== null || d.signalCode !== null) return;
      const gone = new Promise((res) => d.once('exit', res));
      process.kill(d.pid!, 'SIGTERM');
      await Promise.race([gone, sleep(15_000)]);
      if (d.exitCode === null && d.signalCode === null) await this.kill();
    });
    await step(() => this.endLeftovers());
    await step(() => this.removeCgroups());
    await step(async () => {
      const h = this.holder;
      if (!h || h.exitCode !== null || h.signalCode !== null) return;
      const gone = new Promise((res) => h.once('exit', res));
      process.kill(h.pid!, 'SIGKILL');
      await gone;
    });
    await step(() => this.cniCacheEntries().forEach((f) => rmSync(join(CNI_CACHE_DIR, f), { force: true })));
    await step(() => spawnSync('ip', ['netns', 'del', this.outsideNetns]));
    await step(() => spawnSync('ip', ['netns', 'del', this.netns]));
    await step(() => rmSync(this.dir, { recursive: true, force: true }));
  }

  /** PIDs of the shims of this containerd (their command line names its socket) and of its pods. */
  leftoverPids(): number[] {
    const pids = new Set<number>();
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
      try {
        const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
        if (argv.some((a) => a.includes('containerd-shim')) && argv.includes(this.socket)) pids.add(Number(name));
      } catch {
        /* gone meanwhile */
      }
    }
    for (const dir of this.cgroupDirs()) {
      for (const d of walkDirs(dir)) {
        try {
          for (const pid of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(Number(pid));
        } catch {
          /* gone meanwhile */
        }
      }
    }
    return [...pids];
  }

  private async endLeftovers(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const pids = this.leftoverPids();
      if (!pids.length) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(100);
    }
  }

  /** This host's cgroup in every mounted v1 hierarchy (and the v2 one), where it exists. */
  cgroupDirs(): string[] {
    const out: string[] = [];
    for (const h of readdirSync('/sys/fs/cgroup')) {
      const d = join('/sys/fs/cgroup', h, this.cgroupParent);
      if (existsSync(d)) out.push(d);
    }
    const v2 = join('/sys/fs/cgroup', this.cgroupParent);
    if (existsSync(join(v2, 'cgroup.procs'))) out.push(v2);
    return out;
  }

  private removeCgroups(): void {
    for (const dir of this.cgroupDirs()) {
      for (const d of walkDirs(dir).reverse()) {
        try {
          rmdirSync(d);
        } catch {
          /* busy: a process is still leaving */
        }
      }
    }
  }
}

/** `dir` and every directory under it, parents first. */
function walkDirs(dir: string): string[] {
  const out = [dir];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const e of readdirSync(out[i], { withFileTypes: true })) if (e.isDirectory()) out.push(join(out[i], e.name));
    } catch {
      /* gone */
    }
  }
  return out;
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout;
}

/** Polls `cond` until it is true; throws after `timeoutMs` naming what it waited for. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

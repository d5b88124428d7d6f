// A private podman 4.3 (CNI backend) that runs the built Pier: its own containers.conf, storage,
// network config dir and plugin dir under one temp dir, a Pier network whose bridge, subnet, nft
// table and data dir are unique to this run, a busybox root filesystem, and an "outside" test
// host in a netns joined to this host by a veth pair. Everything is removed by `cleanup()`.
//
// podman runs the plugins in the host netns (that is what a runtime does), so the bridge and
// Pier's table live on this machine while the test runs: every name is test-unique and removed.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, ipJson, run, uniquePrefix } from './helpers.ts';
import { PIER, PIER_IPAM, REFERENCE_PLUGINS } from './cni-harness.ts';
import { canonicalElements, listTable } from './nft-state.ts';

export const BUSYBOX = '/bin/busybox';
/** Where podman 4.3's libcni caches each attachment's result (`<net>-<id>-<ifname>`); fixed, not configurable. */
export const CNI_CACHE_DIR = '/var/lib/cni/results';
/** Reference plugin podman runs on each container's `lo`; it must sit in cni_plugin_dirs. */
export const LOOPBACK = join(REFERENCE_PLUGINS, 'loopback');

/** What is missing for the podman test on this machine, in one line, or undefined. */
export function missingPodmanDeps(): string | undefined {
  const missing = ['podman', 'runc', 'conmon', 'nft', 'ip'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0);
  if (!existsSync(BUSYBOX)) missing.push(BUSYBOX);
  if (!existsSync(LOOPBACK)) missing.push(LOOPBACK);
  if (!missing.length) return undefined;
  return `missing ${missing.join(', ')}: run scripts/install-podman-deps.sh`;
}

/** IPv4 CIDR -> [first, last] as unsigned integers. */
function v4Range(cidr: string): [number, number] {
  const [addr, len = '32'] = cidr.split('/');
  const n = addr.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(len));
  const first = n - (n % size);
  return [first, first + size - 1];
}

/** Every IPv4 prefix this machine routes or holds an address in (all tables), e.g. `192.0.2.0/24`. */
function hostV4Prefixes(): string[] {
  const out: string[] = [];
  for (const r of ipJson<Array<{ dst: string; type?: string }>>(undefined, '-4', 'route', 'show', 'table', 'all')) {
    if (r.dst === 'default' || r.type === 'broadcast') continue;
    out.push(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
  }
  for (const l of ipJson<Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>>(undefined, '-4', 'addr', 'show')) {
    for (const a of l.addr_info ?? []) out.push(`${a.local}/${a.prefixlen}`);
  }
  return out;
}

function overlapsHost(cidr: string): boolean {
  const [a, b] = v4Range(cidr);
  return hostV4Prefixes().some((p) => {
    const [c, d] = v4Range(p);
    return a <= d && c <= b;
  });
}

/** A free 10.x /24 for the pod subnet: no route or address of this machine overlaps it. */
function pickPodSubnet(): string {
  for (let i = 0; i < 50; i++) {
    const cidr = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}.0/24`;
    if (!overlapsHost(cidr)) return cidr;
  }
  throw new Error('no free 10.x /24 for the pod subnet');
}

/** A TCP port nothing on the host listens on (Pier's DNAT would shadow it otherwise). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const ok = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, '0.0.0.0', () => s.close(() => res(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free TCP port');
}

export interface PodmanReply {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class PodmanWorld {
  readonly prefix = uniquePrefix();
  readonly network = `${this.prefix}net`;
  readonly bridge = `${this.prefix}pbr`;
  readonly nftTable = `pier_test_${this.prefix}`;
  readonly subnet = pickPodSubnet();
  /** `10.a.b.` of the pod subnet, for addresses in it. */
  readonly base = this.subnet.replace(/0\/24$/, '');
  readonly gateway = `${this.base}1`;
  readonly dir = mkdtempSync(join(tmpdir(), `${this.prefix}-podman-`));
  readonly dataDir = join(this.dir, 'pier-data');
  readonly logFile = join(this.dir, 'pier.log');
  readonly rootfs = join(this.dir, 'rootfs');
  readonly pluginDir = join(this.dir, 'cni-bin');
  readonly netConfDir = join(this.dir, 'net.d');
  readonly storageRoot = join(this.dir, 'storage');
  readonly runRoot = join(this.dir, 'run');
  readonly outside = `${this.prefix}-out`;
  readonly outsideVethHost = `${this.prefix}o0`;
  outsideNet = '';
  outsideHostAddr = '';
  outsideAddr = '';
  private readonly env: NodeJS.ProcessEnv;
  private readonly cleanupSteps = new Cleanup();

  constructor() {
    const c = this.cleanupSteps;
    // podman runs Pier in the real host netns, and an isGateway network turns forwarding on
    // there: put both sysctls back as they were. Added first, so it runs last.
    for (const key of ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']) {
      try {
        const was = readFileSync(key, 'utf8').trim();
        c.add(() => writeFileSync(key, was));
      } catch {
        /* no IPv6 */
      }
    }
    // Everything else is gone before the directory goes (Cleanup runs newest first).
    c.add(() => this.removeDir());
    c.add(() => spawnSync('nft', ['delete', 'table', 'inet', this.nftTable]));
    c.add(() => this.cniCacheFiles().forEach((f) => rmSync(join(CNI_CACHE_DIR, f), { force: true })));
    c.addLink(this.bridge);
    c.addNetns(this.outside);
    c.addLink(this.outsideVethHost);
    // Every container of this private storage is ours; -t 0: no grace period.
    c.add(() => this.podman('rm', '-f', '-a', '-t', '0'));

    this.env = {
      ...process.env,
      CONTAINERS_CONF: join(this.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'),
    };
    try {
      for (const d of [this.dataDir, this.pluginDir, this.netConfDir, this.storageRoot, this.runRoot, join(this.dir, 'tmp')]) mkdirSync(d, { recursive: true });
      // Symlinks: Pier tells its IPAM mode by the name it was run as, so pier-ipam must keep its name.
      symlinkSync(PIER, join(this.pluginDir, 'pier'));
      symlinkSync(PIER_IPAM, join(this.pluginDir, 'pier-ipam'));
      symlinkSync(LOOPBACK, join(this.pluginDir, 'loopback'));
      this.writeConfigs();
      this.makeRootfs();
    } catch (err) {
      this.cleanup();
      throw err;
    }
  }

  private writeConfigs(): void {
    const q = (s: string) => JSON.stringify(s);
    writeFileSync(this.env.CONTAINERS_CONF!, [
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${q(join(this.dir, 'events.log'))}`,
      'runtime = "runc"',
      `tmp_dir = ${q(join(this.dir, 'tmp'))}`,
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = [${q(this.pluginDir)}]`,
      `network_config_dir = ${q(this.netConfDir)}`,
      // A container started without --network lands on Pier's network, never podman's own bridge.
      `default_network = ${q(this.network)}`,
      '',
    ].join('\n'));
    writeFileSync(this.env.CONTAINERS_STORAGE_CONF!, [
      '[storage]',
      'driver = "overlay"',
      `graphroot = ${q(this.storageRoot)}`,
      `runroot = ${q(this.runRoot)}`,
      '',
    ].join('\n'));
    const conflist = {
      cniVersion: '1.0.0',
      name: this.network,
      plugins: [
        {
          type: 'pier',
          bridge: this.bridge,
          isGateway: true,
          ipMasq: true,
          hairpinMode: true,
          nftTable: this.nftTable,
          // In the config, not PIER_LOG_FILE: the DEL of a container that exits runs from
          // `podman container cleanup`, which conmon starts without the test's environment.
          logFile: this.logFile,
          logLevel: 'debug',
          capabilities: { portMappings: true, ips: true },
          ipam: { type: 'pier-ipam', ranges: [[{ subnet: this.subnet, gateway: this.gateway }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: this.dataDir },
        },
      ],
    };
    writeFileSync(join(this.netConfDir, `${this.network}.conflist`), JSON.stringify(conflist, null, 2));
  }

  /** bin/busybox and a symlink per applet, /www/index.html for httpd; /tmp and /etc for podman. */
  private makeRootfs(): void {
    const bin = join(this.rootfs, 'bin');
    for (const d of [bin, join(this.rootfs, 'www'), join(this.rootfs, 'tmp'), join(this.rootfs, 'etc')]) mkdirSync(d, { recursive: true });
    copyFileSync(BUSYBOX, join(bin, 'busybox'));
    for (const applet of run(BUSYBOX, ['--list']).split('\n').filter(Boolean)) {
      if (applet !== 'busybox') symlinkSync('busybox', join(bin, applet));
    }
    writeFileSync(join(this.rootfs, 'www', 'index.html'), `hello from ${this.prefix}\n`);
  }

  /** The greeting every test httpd serves. */
  get greeting(): string {
    return `hello from ${this.prefix}\n`;
  }

  /**
   * The outside test host: netns `<prefix>-out` joined by a veth pair, host side `.1/24`,
   * outside `.2/24`, in 198.51.100.0/24 (or 203.0.113.0/24 if that one is taken here).
   */
  addOutside(): void {
    const net = ['198.51.100.0/24', '203.0.113.0/24'].find((n) => !overlapsHost(n));
    if (!net) throw new Error('both test nets 198.51.100.0/24 and 203.0.113.0/24 are in use on this host');
    this.outsideNet = net;
    const b = net.replace(/0\/24$/, '');
    this.outsideHostAddr = `${b}1`;
    this.outsideAddr = `${b}2`;
    const peer = `${this.prefix}o1`;
    run('ip', ['netns', 'add', this.outside]);
    run('ip', ['link', 'add', this.outsideVethHost, 'type', 'veth', 'peer', 'name', peer, 'netns', this.outside]);
    run('ip', ['addr', 'add', `${this.outsideHostAddr}/24`, 'dev', this.outsideVethHost]);
    run('ip', ['link', 'set', this.outsideVethHost, 'up']);
    run('ip', ['-n', this.outside, 'addr', 'add', `${this.outsideAddr}/24`, 'dev', peer]);
    run('ip', ['-n', this.outside, 'link', 'set', peer, 'up']);
    run('ip', ['-n', this.outside, 'link', 'set', 'lo', 'up']);
  }

  /** Runs `podman` with this world's storage and config; never throws. */
  podman(...args: string[]): PodmanReply {
    const r: SpawnSyncReturns<string> = spawnSync('podman', ['--root', this.storageRoot, '--runroot', this.runRoot, ...args], {
      env: this.env,
      encoding: 'utf8',
      timeout: 90_000,
    });
    return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  }

  /** Runs `podman` as a child process, for concurrent starts; never rejects. */
  podmanAsync(...args: string[]): Promise<PodmanReply> {
    return new Promise((resolve) => {
      const child = spawn('podman', ['--root', this.storageRoot, '--runroot', this.runRoot, ...args], { env: this.env, timeout: 90_000 });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', (err) => (stderr += String(err)));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  /** Runs `podman`; throws with its stderr and Pier's recent log when it fails. */
  podmanOk(...args: string[]): string {
    const r = this.podman(...args);
    if (r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status}):\n${r.stderr}\n--- pier log (tail) ---\n${this.logTail()}`);
    return r.stdout;
  }

  /** `podman run ARGS... --rootfs ROOTFS CMD...`: --rootfs is a flag and the rootfs the first positional. */
  runArgs(opts: string[], cmd: string[]): string[] {
    return ['run', '--network', this.network, ...opts, '--rootfs', this.rootfs, ...cmd];
  }

  /** Starts a detached busybox httpd on port 8080 serving the greeting; returns the container ID. */
  startHttpd(name: string, opts: string[] = []): string {
    return this.podmanOk(...this.runArgs(['-d', '--name', name, ...opts], ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'])).trim();
  }

  /** `podman inspect` of one container. */
  inspect(name: string): any {
    return JSON.parse(this.podmanOk('inspect', name))[0];
  }

  /** The network state podman recorded for the container on Pier's network. */
  netOf(name: string): { IPAddress: string; IPPrefixLen: number; Gateway: string; MacAddress: string } {
    return this.inspect(name).NetworkSettings.Networks[this.network];
  }

  /** Pier's store directory of the network. */
  get storeDir(): string {
    return join(this.dataDir, this.network);
  }

  /** The files of Pier's store: reserved-IP files and attachment records. */
  storeFiles(): { ips: Map<string, string>; records: string[] } {
    const ips = new Map<string, string>();
    if (!existsSync(this.storeDir)) return { ips, records: [] };
    for (const f of readdirSync(this.storeDir)) {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(f)) ips.set(f, readFileSync(join(this.storeDir, f), 'utf8'));
    }
    const recDir = join(this.storeDir, 'attachments');
    return { ips, records: existsSync(recDir) ? readdirSync(recDir) : [] };
  }

  /** The attachment record Pier keeps for `containerID/eth0`, or undefined. */
  record(containerID: string): any {
    const f = join(this.storeDir, 'attachments', `${containerID}_eth0.json`);
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
  }

  /** Names of the links enslaved to Pier's bridge. */
  bridgePorts(): string[] {
    return ipJson<Array<{ ifname: string }>>(undefined, 'link', 'show', 'master', this.bridge).map((l) => l.ifname);
  }

  /** podman's CNI result cache files of this world's network. */
  cniCacheFiles(): string[] {
    return existsSync(CNI_CACHE_DIR) ? readdirSync(CNI_CACHE_DIR).filter((f) => f.startsWith(`${this.network}-`)) : [];
  }

  /** Pier's table as `nft -j` text ('' when the table does not exist; throws when nft fails). */
  nftText(): string {
    const items = listTable(undefined, this.nftTable);
    return items === null ? '' : JSON.stringify({ nftables: items });
  }

  /** Every element of Pier's table, canonical and sorted: equal lists mean no element changed. */
  nftElements(): string[] {
    return canonicalElements(undefined, this.nftTable);
  }

  /** The last lines of Pier's log of this run, for failure messages. */
  logTail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Removes containers, the outside netns and veth, the bridge, the nft table and the temp dir. */
  cleanup(): void {
    this.cleanupSteps.runAll();
  }

  /** Unmounts anything podman left mounted under the temp dir (deepest first), then removes it. */
  private removeDir(): void {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => Boolean(m) && (m === this.dir || m.startsWith(`${this.dir}/`)))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) spawnSync('umount', ['-l', m]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

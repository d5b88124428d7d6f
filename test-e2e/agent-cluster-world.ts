// A simulated cluster for the agent's e2e tests and its benchmark: throwaway netns only. One
// netns holds the underlay's bridges (never the host's); a router netns joins two node
// segments (203.0.113.0/25 and 203.0.113.128/25, with fd00:203:1::/64 and fd00:203:2::/64) and
// an "outside" segment (198.51.100.0/24, fd00:198::/64); the control plane (test-e2e/kube)
// runs in its own netns on segment 1; each node is a netns on a segment running `dist/pier
// agent`; pods are netns wired by dist/pier as a CNI plugin inside their node, from the
// conflist that node's agent wrote. Processes are ended by PID; everything goes in cleanup.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, ipJson, run } from './helpers.ts';
import { PIER, ROOT } from './cni-harness.ts';

export const SEGMENTS = {
  1: { v4: '203.0.113.0/25', gw4: '203.0.113.1', v6: 'fd00:203:1::/64', gw6: 'fd00:203:1::1' },
  2: { v4: '203.0.113.128/25', gw4: '203.0.113.129', v6: 'fd00:203:2::/64', gw6: 'fd00:203:2::1' },
  3: { v4: '198.51.100.0/24', gw4: '198.51.100.1', v6: 'fd00:198::/64', gw6: 'fd00:198::1' },
} as const;
export type Segment = keyof typeof SEGMENTS;

export const OUTSIDE4 = '198.51.100.2';
export const OUTSIDE6 = 'fd00:198::2';
export const CP_ADDR = '203.0.113.100';

export interface SimNode {
  name: string;
  netns: string;
  segment: Segment;
  ip4: string;
  ip6: string;
  dir: string;
  confDir: string;
  dataDir: string;
  runDir: string;
  log: string;
  agent?: ChildProcess;
}

export interface Pod {
  netns: string;
  node: SimNode;
  ip4: string;
  ip6?: string;
}

const prefixLen = (cidr: string) => cidr.split('/')[1];

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes; returns that value or throws. */
export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export class ClusterWorld {
  readonly cleanup = new Cleanup();
  readonly dir: string;
  readonly ul: string;
  readonly router: string;
  readonly cp: string;
  readonly outside: string;
  readonly nodes = new Map<string, SimNode>();
  private links = 0;
  private pods = 0;

  constructor(readonly prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-cluster-`));
    this.cleanup.add(() => rmSync(this.dir, { recursive: true, force: true }));
    this.ul = this.netns('ul');
    this.router = this.netns('rt');
    this.cp = this.netns('cp');
    this.outside = this.netns('out');
    for (const s of [1, 2, 3] as const) run('ip', ['-n', this.ul, 'link', 'add', `br${s}`, 'type', 'bridge']);
    for (const s of [1, 2, 3] as const) run('ip', ['-n', this.ul, 'link', 'set', `br${s}`, 'up']);
    run('ip', ['netns', 'exec', this.router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const s of [1, 2, 3] as const) this.plug(this.router, s, SEGMENTS[s].gw4, SEGMENTS[s].gw6, `seg${s}`);
    this.plug(this.cp, 1, CP_ADDR, 'fd00:203:1::100');
    this.plug(this.outside, 3, OUTSIDE4, OUTSIDE6);
  }

  private netns(tag: string): string {
    const name = `${this.prefix}-${tag}`;
    this.cleanup.addNetns(name);
    run('ip', ['netns', 'add', name]);
    run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** A veth from `ns` (named `ifname`) to segment `s`'s bridge, addresses, and a default route via the router. */
  private plug(ns: string, s: Segment, ip4: string, ip6: string, ifname = 'eth0'): void {
    const peer = `${this.prefix}v${this.links++}`;
    run('ip', ['-n', ns, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', peer, 'netns', this.ul]);
    run('ip', ['-n', this.ul, 'link', 'set', peer, 'master', `br${s}`, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `${ip4}/${prefixLen(SEGMENTS[s].v4)}`, 'dev', ifname]);
    run('ip', ['-n', ns, 'addr', 'add', `${ip6}/${prefixLen(SEGMENTS[s].v6)}`, 'dev', ifname, 'nodad']);
    run('ip', ['-n', ns, 'link', 'set', ifname, 'up']);
    if (ns !== this.router) {
      run('ip', ['-n', ns, 'route', 'add', 'default', 'via', SEGMENTS[s].gw4]);
      run('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', SEGMENTS[s].gw6]);
    }
  }

  /** A node netns on segment `s` with its own conf, data and run dirs. */
  addNode(name: string, s: Segment, ip4: string, ip6: string): SimNode {
    const netns = this.netns(name);
    this.plug(netns, s, ip4, ip6);
    const dir = join(this.dir, name);
    const n: SimNode = { name, netns, segment: s, ip4, ip6, dir, confDir: join(dir, 'net.d'), dataDir: join(dir, 'data'), runDir: join(dir, 'run'), log: join(dir, 'agent.log') };
    mkdirSync(dir, { recursive: true });
    this.nodes.set(name, n);
    return n;
  }

  /** Starts `dist/pier agent` in the node's netns; its JSON log lines go to n.log. */
  startAgent(n: SimNode, kubeconfig: string, extra: string[] = []): ChildProcess {
    const fd = openSync(n.log, 'a');
    const child = spawn('ip', ['netns', 'exec', n.netns, 'env', '-i', PIER, 'agent', '--node-name', n.name, '--kubeconfig', kubeconfig,
      '--cni-conf-dir', n.confDir, '--data-dir', n.dataDir, '--run-dir', n.runDir, '--resync-interval', '10', ...extra], { stdio: ['ignore', 'ignore', fd] });
    closeSync(fd);
    // `ip netns exec` execs the agent: the child's PID is the agent's own.
    this.cleanup.add(() => {
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    });
    n.agent = child;
    return child;
  }

  /**
   * Starts the agent as a DaemonSet pod would run it: no --kubeconfig and no --node-name, but
   * KUBERNETES_SERVICE_HOST/PORT, NODE_NAME and a service account token and CA at the
   * in-cluster path, on a tmpfs over /run in a private mount namespace (nothing of it reaches
   * the host's /run).
   */
  startAgentInCluster(n: SimNode, sa: { token: string; caFile: string; host: string; port: string }, extra: string[] = []): ChildProcess {
    const fd = openSync(n.log, 'a');
    const script = [
      'set -e',
      'mount -t tmpfs pier-test-run /run',
      'd=/run/secrets/kubernetes.io/serviceaccount',
      'mkdir -p "$d"',
      'printf %s "$PIER_TEST_TOKEN" > "$d/token"',
      'cp "$PIER_TEST_CA" "$d/ca.crt"',
      'printf kube-system > "$d/namespace"',
      'exec env -i KUBERNETES_SERVICE_HOST="$PIER_TEST_HOST" KUBERNETES_SERVICE_PORT="$PIER_TEST_PORT" NODE_NAME="$PIER_TEST_NODE" "$@"',
    ].join('\n');
    const child = spawn('ip', ['netns', 'exec', n.netns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, 'sh',
      PIER, 'agent', '--cni-conf-dir', n.confDir, '--data-dir', n.dataDir, '--run-dir', n.runDir, '--resync-interval', '10', ...extra], {
      stdio: ['ignore', 'ignore', fd],
      env: { PATH: process.env.PATH, PIER_TEST_TOKEN: sa.token, PIER_TEST_CA: sa.caFile, PIER_TEST_HOST: sa.host, PIER_TEST_PORT: sa.port, PIER_TEST_NODE: n.name },
    });
    closeSync(fd);
    this.cleanup.add(() => {
      if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
    });
    n.agent = child;
    return child;
  }

  /** Ends the node's agent with `signal` and waits for it to exit; resolves to its exit code. */
  async stopAgent(n: SimNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = n.agent;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    process.kill(child.pid!, signal);
    return exited;
  }

  /** The agent's log lines, parsed. */
  logOf(n: SimNode): Array<{ level: string; msg: string; [k: string]: unknown }> {
    if (!existsSync(n.log)) return [];
    return readFileSync(n.log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  }

  /** Routes of Pier's protocol in the node: `dst via gw dev`. */
  routesOf(n: SimNode, family: '-4' | '-6' = '-4'): string[] {
    return (ipJson(n.netns, family, 'route', 'show', 'proto', '173') as Array<{ dst: string; gateway: string; dev: string }>).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();
  }

  /** The conflist the node's agent wrote, parsed (undefined when none yet). */
  conflistOf(n: SimNode): Record<string, any> | undefined {
    const f = join(n.confDir, '10-pier.conflist');
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) : undefined;
  }

  /**
   * A pod on node `n`: a netns wired by running dist/pier as the runtime would, with the agent's
   * conflist (and `runtimeConfig`, as a runtime adds it for the capabilities the entry declares).
   */
  addPod(n: SimNode, runtimeConfig?: Record<string, unknown>): Pod {
    const list = this.conflistOf(n);
    if (!list) throw new Error(`${n.name} has no conflist yet`);
    const netns = this.netns(`p${this.pods++}`);
    // As libcni does: only the capabilities the entry declares reach it.
    const caps = (list.plugins[0].capabilities ?? {}) as Record<string, boolean>;
    const granted = Object.fromEntries(Object.entries(runtimeConfig ?? {}).filter(([k]) => caps[k]));
    const entry = { cniVersion: list.cniVersion, name: list.name, ...list.plugins[0], ...(Object.keys(granted).length && { runtimeConfig: granted }) };
    const env = {
      CNI_COMMAND: 'ADD', CNI_CONTAINERID: `${netns}-ctr`, CNI_NETNS: `/run/netns/${netns}`, CNI_IFNAME: 'eth0',
      CNI_PATH: join(ROOT, 'dist'), PIER_LOG_FILE: join(n.dir, 'pier.log'),
    };
    const r = spawnSync('ip', ['netns', 'exec', n.netns, 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), PIER], {
      input: JSON.stringify(entry), encoding: 'utf8', timeout: 60_000,
    });
    if (r.status !== 0) throw new Error(`ADD of a pod on ${n.name} failed: ${r.stdout} ${r.stderr}`);
    const result = JSON.parse(r.stdout) as { ips: Array<{ address: string }> };
    const ip4 = result.ips.find((i) => !i.address.includes(':'))!.address.split('/')[0];
    const ip6 = result.ips.find((i) => i.address.includes(':'))?.address.split('/')[0];
    return { netns, node: n, ip4, ...(ip6 && { ip6 }) };
  }

  /** Runs a command in a netns. */
  exec(ns: string, cmd: string, args: string[]) {
    return spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
  }
}

/** Answers TCP with the caller's address (IPv4-mapped addresses unwrapped). Exits after lifeMs. */
const ECHO = `
const net = require('net');
const [port, lifeMs] = process.argv.slice(1).map(Number);
setTimeout(() => process.exit(0), lifeMs);
net.createServer((c) => { c.on('error', () => {}); c.end(String(c.remoteAddress).replace(/^::ffff:/, '') + '\\n'); })
  .listen({ port, host: '::', ipv6Only: false }, () => process.stdout.write('ready\\n'));
`;

const ASK = `
const net = require('net');
const [host, port, ms] = process.argv.slice(1);
const done = (s) => { process.stdout.write(s); process.exit(0); };
setTimeout(() => done('TIMEOUT'), Number(ms));
const c = net.connect({ host, port: Number(port) });
let d = '';
c.on('data', (x) => { d += x; });
c.on('end', () => done(d.trim()));
c.on('error', (e) => done('ERR ' + e.code));
`;

/** Starts the echo server in `ns` (killed by PID at cleanup); resolves once it listens. */
export async function startEcho(world: ClusterWorld, ns: string, port: number, lifeMs = 900_000): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', ECHO, String(port), String(lifeMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  world.cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`echo server in ${ns} exited (${code})`)));
  });
  return child;
}

/** One TCP request from `ns`: the address the server saw, `ERR <code>` or `TIMEOUT`. */
export function ask(ns: string, host: string, port: number, timeoutMs = 3000): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', ASK, host, String(port), String(timeoutMs)], { encoding: 'utf8', timeout: timeoutMs + 15_000 });
  return r.stdout.trim();
}

/** A UDP receiver counting sequence numbers; `stop()` ends it and returns what it saw. */
const RECEIVER = `
const dgram = require('dgram');
const [port, lifeMs] = process.argv.slice(1).map(Number);
setTimeout(() => process.exit(0), lifeMs);
const seen = new Set(); let max = -1;
const s = dgram.createSocket('udp4');
s.on('message', (m) => { const t = m.toString(); if (t === 'END') { process.stdout.write(JSON.stringify({ count: seen.size, max }) + '\\n'); process.exit(0); } const n = Number(t); seen.add(n); if (n > max) max = n; });
s.bind(port, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;

const SENDER = `
const dgram = require('dgram');
const [host, port, everyMs] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
let n = 0, stopping = false;
const t = setInterval(() => { if (!stopping) s.send(String(n++), Number(port), host); }, Number(everyMs));
process.on('SIGTERM', () => { stopping = true; clearInterval(t); let k = 0; const e = setInterval(() => { s.send('END', Number(port), host); if (++k === 20) { process.stdout.write(String(n) + '\\n'); process.exit(0); } }, 50); });
`;

/** A UDP flow of numbered datagrams from `from` to `to`:port; stop() says how many were sent and received. */
export async function startFlow(world: ClusterWorld, from: string, to: string, toIp: string, port: number, everyMs = 5) {
  const recv = spawn('ip', ['netns', 'exec', to, process.execPath, '-e', RECEIVER, String(port), '600000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  world.cleanup.add(() => recv.exitCode === null && recv.pid && process.kill(recv.pid, 'SIGKILL'));
  let rout = '';
  recv.stdout!.on('data', (d) => (rout += d));
  await waitFor('the UDP receiver', () => rout.includes('ready'), 30_000, 20);
  const send = spawn('ip', ['netns', 'exec', from, process.execPath, '-e', SENDER, toIp, String(port), String(everyMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  world.cleanup.add(() => send.exitCode === null && send.pid && process.kill(send.pid, 'SIGKILL'));
  let sout = '';
  send.stdout!.on('data', (d) => (sout += d));
  return {
    async stop(): Promise<{ sent: number; received: number; max: number }> {
      const sendExit = new Promise((r) => send.once('exit', r));
      const recvExit = new Promise((r) => recv.once('exit', r));
      process.kill(send.pid!, 'SIGTERM');
      await sendExit;
      await recvExit;
      const r = JSON.parse(rout.split('\n').find((l) => l.startsWith('{')) ?? '{"count":-1,"max":-1}');
      return { sent: Number(sout.trim()), received: r.count, max: r.max };
    },
  };
}

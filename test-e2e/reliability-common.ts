// Shared by the reliability-*.test.ts files: a seeded PRNG, async plugin calls with bounded
// parallelism, and snapshots of a TestWorld's host netns and of the file system around it.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, statSync } from 'node:fs';
import { PIER, type CniCall, type CniReply, type TestWorld } from './cni-harness.ts';
import { tableElements } from './nft-state.ts';

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}
export type Prng = ReturnType<typeof prng>;

/** The seed: RELIABILITY_SEED when set (to replay a failure), else the file's fixed default. */
export function seedFor(name: string, fallback: number): number {
  const s = Number(process.env.RELIABILITY_SEED ?? fallback);
  console.log(`# ${name}: seed ${s} (replay with RELIABILITY_SEED=${s})`);
  return s;
}

export interface AsyncReply extends CniReply {
  signal: NodeJS.Signals | null;
  ms: number;
}

/** Runs the plugin as a child, as a runtime does, without blocking the event loop. */
export function callAsync(w: TestWorld, call: CniCall, stdin: unknown, opts: { timeoutMs?: number } = {}): Promise<AsyncReply> {
  const started = Date.now();
  const child = w.spawn(call, stdin);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {}); // the plugin may exit before reading all of a huge stdin
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status, signal, stdout, stderr, json, ms: Date.now() - started });
    });
  });
}

/** Runs `tasks` with at most `limit` at a time; results in task order. */
export async function pool<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

function hostJson(w: TestWorld, cmd: string, args: string[]): any {
  const r = w.exec(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout || '[]');
}

/**
 * The host netns as `ip -j` and `nft -j` see it, minus what changes on its own (operstate of a
 * bridge whose ports come and go, counters): links by name with kind, master, MAC, MTU and
 * flags; addresses; routes; the whole ruleset. Two equal snapshots mean nothing was touched.
 */
export function hostSnapshot(w: TestWorld, ignoreLinks: (name: string) => boolean = () => false, ignoreTable?: string) {
  const links = (hostJson(w, 'ip', ['-j', '-d', 'link', 'show']) as any[])
    .filter((l) => !ignoreLinks(l.ifname))
    .map((l) => ({ ifname: l.ifname, ifindex: l.ifindex, kind: l.linkinfo?.info_kind, master: l.master, address: l.address, mtu: l.mtu, flags: l.flags, link: l.link }));
  const addrs = (hostJson(w, 'ip', ['-j', 'addr', 'show']) as any[])
    .filter((l) => !ignoreLinks(l.ifname))
    // IPv6 link-local addresses and their routes come and go with the kernel's autoconf timing.
    .map((l) => ({ ifname: l.ifname, addrs: (l.addr_info ?? []).filter((a: any) => !a.local.startsWith('fe80:')).map((a: any) => `${a.local}/${a.prefixlen}`).sort() }));
  const routes = (hostJson(w, 'ip', ['-j', 'route', 'show', 'table', 'all']) as any[])
    .filter((r) => !ignoreLinks(r.dev) && !/^(fe80:|ff00::)/.test(r.dst))
    .map((r) => JSON.stringify(r)).sort();
  const ruleset = (hostJson(w, 'nft', ['-j', 'list', 'ruleset']).nftables as any[])
    .filter((x) => !x.metainfo && !(ignoreTable && (Object.values(x)[0] as any)?.[x.table ? 'name' : 'table'] === ignoreTable))
    .map((x) => JSON.stringify(x));
  return { links, addrs, routes, ruleset };
}

/**
 * Entry names (recursively, to `depth`) under the places a stray write by Pier would land:
 * /, /tmp, /run, /var/lib, /var/log, /etc, the repo and its dist. Other tests (possibly of
 * other engineers, on the same machine) make `pt<hex>` names in /tmp and /run/netns: those are
 * left out unless they carry `prefix`.
 */
export function fsSnapshot(prefix: string, extra: string[] = []): Set<string> {
  const out = new Set<string>();
  // Other processes on the machine (other tests, other engineers' tools) write here too: their
  // usual names are left out. In CI nothing else runs, so there the check sees everything else.
  const foreign = (name: string) =>
    (/^pt/.test(name) && !name.startsWith(prefix)) || /^bash_(jobs|tool)|\.(strace|sh|cpuprofile|heapprofile|log)$|^(build|node_modules|\.git)$/.test(name);
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (foreign(n) || /^pier-build-test-|^tsx-|^node-compile-cache|^\.pier\.\d+\.tmp|^v8-compile/.test(n)) continue;
      const p = `${dir === '/' ? '' : dir}/${n}`;
      out.add(p);
      if (depth > 1) {
        try {
          if (statSync(p).isDirectory()) walk(p, depth - 1);
        } catch {
          // vanished meanwhile
        }
      }
    }
  };
  walk('/', 1);
  for (const d of ['/tmp', '/run', '/var/lib', '/var/log', '/etc', '/root', '/dev/shm']) walk(d, 2);
  for (const d of ['/var/lib/pier', '/var/lib/cni', '/run/pier', '/etc/cni', `${import.meta.dirname}/..`, `${import.meta.dirname}/../dist`, ...extra]) walk(d, 4);
  return out;
}

/** What appeared in `after` that was not in `before`, outside `allowed` path prefixes. */
export function newFiles(before: Set<string>, after: Set<string>, allowed: string[]): string[] {
  return [...after].filter((p) => !before.has(p) && !allowed.some((a) => p === a || p.startsWith(`${a}/`)));
}

/** `pier ls --json --data-dir DIR`: the store must always parse. */
export function pierLs(dataDir: string): any[] {
  const r = spawnSync(PIER, ['ls', '--json', '--data-dir', dataDir], { encoding: 'utf8', env: {} });
  if (r.status !== 0) throw new Error(`pier ls failed (${r.status}): ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Files of one network's store: IP files, records, temp files (lock and last_reserved left out). */
export function storeFiles(dataDir: string, network: string): { ips: string[]; records: string[]; other: string[] } {
  const dir = `${dataDir}/${network}`;
  const list = (d: string) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  };
  const top = list(dir).filter((n) => n !== 'lock' && n !== 'attachments' && !n.startsWith('last_reserved_ip.'));
  return {
    ips: top.filter((n) => /^[0-9a-f._]+$/i.test(n) && !n.startsWith('.')),
    records: list(`${dir}/attachments`).filter((n) => n.endsWith('.json') && !n.startsWith('.')),
    other: [...top.filter((n) => !/^[0-9a-f._]+$/i.test(n) || n.startsWith('.')), ...list(`${dir}/attachments`).filter((n) => !n.endsWith('.json') || n.startsWith('.'))],
  };
}

/** Pier's nft elements in the world's table, by set/map name, as their comment (attachment key). */
export function nftElements(w: TestWorld, table: string): Array<{ set: string; comment?: string; val: string }> {
  return tableElements(w.host, table).map((e) => ({ set: e.set, comment: e.comment, val: JSON.stringify(e.key) }));
}

/** Links in the host netns that are ports of `bridge`, and all veths. */
export function hostVeths(w: TestWorld, bridge: string): { ports: string[]; veths: string[] } {
  const links = hostJson(w, 'ip', ['-j', '-d', 'link', 'show']) as any[];
  return {
    ports: links.filter((l) => l.master === bridge).map((l) => l.ifname),
    veths: links.filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname),
  };
}

/** With RELIABILITY_KEEP_LOGS=DIR, keeps the world's Pier log as DIR/<name>.log (for a failure). */
export function keepLog(w: TestWorld | undefined, name: string): void {
  const dir = process.env.RELIABILITY_KEEP_LOGS;
  if (!w || !dir) return;
  try {
    copyFileSync(w.logFile, `${dir}/${name}.log`);
  } catch {
    // no log yet
  }
}

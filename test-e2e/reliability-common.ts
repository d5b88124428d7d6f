// Shared by the reliability-*.test.ts files: a seeded PRNG, async plugin calls with bounded
// parallelism, a snapshot of a TestWorld's host netns, and an strace account of the files Pier touched.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
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

/** System calls that create, change or remove a name in the file system. */
const FILE_CALLS = [
  'open', 'openat', 'openat2', 'creat', 'truncate', 'mkdir', 'mkdirat', 'rmdir', 'unlink', 'unlinkat', 'rename', 'renameat',
  'renameat2', 'link', 'linkat', 'symlink', 'symlinkat', 'mknod', 'mknodat', 'chmod', 'fchmodat', 'chown', 'lchown', 'fchownat',
];

/**
 * A command prefix (CniCall.via) that runs the plugin under strace, following its threads and
 * children, logging each of FILE_CALLS to `<base>.<pid>`: strings and the paths of descriptors
 * in hex (-xx -y), so any name, however hostile, reads back exactly. What Pier wrote is then
 * known by attribution, not by comparing the file system before and after, which on a shared
 * machine also sees everyone else's files.
 */
export function fileWriteTracer(base: string): string[] {
  return ['strace', '-f', '-ff', '-qq', '--seccomp-bpf', '-y', '-xx', '-o', base, '-e', `trace=${FILE_CALLS.join(',')}`];
}

const unhex = (s: string) => Buffer.from(s.replace(/\\x/g, ''), 'hex').toString('latin1');

/**
 * Every path that the traced calls in `files` (fileWriteTracer's output) created, opened for
 * writing, renamed, linked, changed or removed, successfully. Anonymous files (O_TMPFILE) have
 * no name and are left out.
 */
export function pathsWritten(files: string[]): Set<string> {
  const out = new Set<string>();
  for (const file of files) {
    for (const line of readFileSync(file, 'latin1').split('\n')) {
      const m = /^([a-z_0-9]+)\((.*)\) += (.*)$/.exec(line);
      if (!m || m[3].startsWith('-') || m[3].startsWith('?')) continue;
      const [, name, argText] = m;
      // Arguments in order: a descriptor with its path (`3<\x..>`, `AT_FDCWD<\x..>`), a string,
      // or anything else (flags, modes).
      const args: Array<{ dir?: string; str?: string; text?: string }> = [];
      for (const a of argText.matchAll(/(?:AT_FDCWD|-?\d+)<((?:\\x[0-9a-f]{2})*)>|"((?:\\x[0-9a-f]{2})*)"|([^,\s][^,]*)/g)) {
        args.push(a[1] !== undefined ? { dir: unhex(a[1]) } : a[2] !== undefined ? { str: unhex(a[2]) } : { text: a[3] });
      }
      const at = (dir: { dir?: string } | undefined, p: { str?: string } | undefined) =>
        p?.str === undefined ? undefined : resolve(p.str.startsWith('/') ? '/' : dir?.dir ?? process.cwd(), p.str);
      const flags = args.map((a) => a.text ?? '').join(',');
      const writes = /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND/.test(flags) && !/O_TMPFILE/.test(flags);
      const found: Array<string | undefined> = [];
      switch (name) {
        case 'open': case 'creat':
          if (name === 'creat' || writes) found.push(at(undefined, args[0]));
          break;
        case 'openat': case 'openat2':
          if (writes) found.push(at(args[0], args[1]));
          break;
        case 'mkdirat': case 'unlinkat': case 'mknodat': case 'fchmodat': case 'fchownat':
          found.push(at(args[0], args[1]));
          break;
        case 'renameat': case 'renameat2': case 'linkat':
          found.push(...(name === 'linkat' ? [] : [at(args[0], args[1])]), at(args[2], args[3]));
          break;
        case 'rename': case 'link':
          found.push(...(name === 'link' ? [] : [at(undefined, args[0])]), at(undefined, args[1]));
          break;
        case 'symlink':
          found.push(at(undefined, args[1]));
          break;
        case 'symlinkat':
          found.push(at(args[1], args[2]));
          break;
        default: // truncate, mkdir, rmdir, unlink, mknod, chmod, chown, lchown: the path first
          found.push(at(undefined, args[0]));
      }
      for (const p of found) if (p) out.add(p);
    }
  }
  return out;
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

// The one module that runs nft (and conntrack): applies a JSON transaction, lists Pier's table,
// probes that nft is usable. Everything it sends is built elsewhere, by pure functions.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Options, ResultPromise } from 'execa';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { NftDocument } from './build-attachment.ts';
import type { IpFamily } from './addr.ts';
import { FALLBACK_DIRS, resolveBinary } from './resolve-binary.ts';
import { pipe } from '../netlink/libc.ts';

/** Where the binaries are; tests point these at fakes. A bare name is looked up by resolveBinary. */
export interface RunnerOptions {
  nft?: string;
  conntrack?: string;
  /** Per call; nft takes milliseconds, so anything near this is a hung kernel or lock. */
  timeoutMs?: number;
}

const DEFAULTS = { nft: 'nft', conntrack: 'conntrack', timeoutMs: 30_000 };

// O_TMPFILE: an unnamed inode nobody else can open or swap (its Linux value, as in load-koffi).
const O_TMPFILE = 0o20000000 | 0o200000;
const O_RDWR = 2;
/** The document is handed to nft as this descriptor and read back through /proc/self/fd. */
const DOC_FD = 3;

/**
 * Applies `doc` as ONE nft transaction: all its commands take effect, or none.
 *
 * How the JSON reaches nft: `nft -f -` cannot read a Node pipe (nft reopens /dev/stdin, and a
 * Node stdio pipe is a socket: ENXIO), and argv is capped at 128 KiB per argument. So the
 * document goes through a descriptor the child inherits as fd 3, and nft reads
 * `/proc/self/fd/3`, which reopens it. Nothing is ever left on disk.
 *
 * nft must not outlive Pier (diesWithPier). setpriv arms that only once it runs, so a Pier
 * killed just after the fork would still leave an nft behind with the whole document. So fd 3 is
 * a real pipe, and the document goes in only once the child has become nft (its comm says so;
 * setpriv arms the signal before it execs): killed before that, nft reads a cut document and
 * applies nothing; killed after, nft dies with it. Without setpriv (or a pipe), fd 3 is an
 * anonymous file holding the document, as before.
 */
export async function applyTransaction(doc: NftDocument, opts: RunnerOptions = {}): Promise<void> {
  const o = { ...DEFAULTS, ...opts };
  const nft = resolveBinary(o.nft);
  const [bin, args] = diesWithPier(nft, ['-j', '-f', `/proc/self/fd/${DOC_FD}`]);
  const text = JSON.stringify(doc);
  let ends: [number, number] | undefined;
  if (bin !== nft) {
    try {
      ends = pipe();
    } catch {
      // Out of descriptors, or no kernel to ask (the snapshot warm-up): the file way still works.
    }
  }
  const fd = ends ? ends[0] : openAnonymousFile(text);
  // execa hands a descriptor number straight to spawn(); its types admit numbers for fds 0-2 only.
  const stdio = ['ignore', 'pipe', 'pipe', fd] as unknown as Options['stdio'];
  let child: ResultPromise | undefined;
  try {
    child = (await execa())(bin, args, { stdio, reject: false, timeout: o.timeoutMs });
  } finally {
    fs.closeSync(fd);
  }
  const fed = ends ? await feed(child, ends[1], path.basename(nft), text, o.timeoutMs) : undefined;
  const r = await settle(child);
  if (r.failed) throw nftError('apply transaction', r, summarise(doc));
  // nft cannot apply a cut document (JSON that ends early never parses); this is belt and braces.
  if (fed) throw new CniError(ErrorCode.IoFailure, 'writing the nft transaction failed', '', { cause: fed });
}

/**
 * Writes `text` into the pipe's write end once `child` runs `name` (or has died), then closes
 * it. Returns a write error other than EPIPE (nft gone: its exit says why), never throws: the
 * child is always awaited.
 */
async function feed(child: ResultPromise, w: number, name: string, text: string, timeoutMs: number): Promise<Error | undefined> {
  try {
    const comm = `/proc/${child.pid}/comm`;
    const want = name.slice(0, 15);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let now: string;
      try {
        now = fs.readFileSync(comm, 'utf8').trimEnd();
      } catch {
        return undefined; // gone (or never started): nothing to feed
      }
      if (now === want || child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const buf = Buffer.from(text);
    for (let off = 0; off < buf.length; ) off += await new Promise<number>((resolve, reject) => fs.write(w, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n))));
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : (err as Error);
  } finally {
    fs.closeSync(w);
  }
}

let setprivPath: string | undefined;

/**
 * `bin args` run under `setpriv --pdeathsig KILL` (util-linux), so that nft dies with Pier.
 * Without it, a Pier killed mid-ADD (a runtime's timeout) leaves its nft child to apply the dead
 * pod's elements after the runtime's DEL and GC have run, and they stay until a later GC. With it,
 * the kernel kills nft as Pier exits, before the runtime can even see the exit: the transaction
 * is then either not sent (nothing to undo) or already applied (DEL removes it). One exec more
 * (~1 ms) on a path that runs when a network is first set up, not per pod. Without setpriv (or
 * when `bin` was not found, so the missing-nft report stays nft's own ENOENT) nft runs as it is.
 */
export function diesWithPier(bin: string, args: string[], setpriv: string = (setprivPath ??= resolveBinary('setpriv'))): [string, string[]] {
  if (!bin.includes('/') || !setpriv.includes('/')) return [bin, args];
  return [setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args]];
}

/**
 * `nft -j list table <family> <name>` parsed, or null when the table does not exist. Pier lists
 * only its own table; `parseTableListing` reads the result.
 */
export async function listTable(family: string, name: string, opts: RunnerOptions = {}): Promise<unknown | null> {
  const r = await runNft(['-j', 'list', 'table', family, name], opts);
  if (r.failed) {
    if (/No such file or directory/.test(r.stderr)) return null;
    throw nftError(`list table ${family} ${name}`, r);
  }
  return parseJsonOutput(r.stdout, `list table ${family} ${name}`);
}

/** `nft -j list chains`: every table's chains with hook and policy, but no rules (cheap). */
export async function listChains(opts: RunnerOptions = {}): Promise<unknown> {
  const r = await runNft(['-j', 'list', 'chains'], opts);
  if (r.failed) throw nftError('list chains', r);
  return parseJsonOutput(r.stdout, 'list chains');
}

/** `nft -j list chain <family> <table> <chain>`: one chain with its rules. */
export async function listChain(family: string, table: string, chain: string, opts: RunnerOptions = {}): Promise<unknown> {
  const r = await runNft(['-j', 'list', 'chain', family, table, chain], opts);
  if (r.failed) throw nftError(`list chain ${family} ${table} ${chain}`, r);
  return parseJsonOutput(r.stdout, `list chain ${family} ${table} ${chain}`);
}

export type NftAvailability = { ok: true; version: string } | { ok: false; reason: string; fix: string };

/**
 * Whether nft can serve Pier: the binary exists, has JSON support (some distributions build it
 * without) and may talk to the kernel (root or CAP_NET_ADMIN). The probe lists a table name
 * nobody uses, so it reads nothing of anyone's ruleset.
 */
export async function nftAvailable(opts: RunnerOptions = {}): Promise<NftAvailability> {
  const o = { ...DEFAULTS, ...opts };
  const v = await runNft(['--version'], opts);
  if (isNotFound(v)) {
    return { ok: false, reason: `nft not found (${whereLooked(o.nft)})`, fix: 'install the nftables package: apt-get install nftables' };
  }
  if (v.failed) return { ok: false, reason: `nft --version failed: ${firstLine(v)}`, fix: 'check the nft installation' };
  const version = /v?(\d+\.\d+(?:\.\d+)*)/.exec(v.stdout)?.[1] ?? v.stdout.trim();
  const probe = await runNft(['-j', 'list', 'table', 'inet', '__pier_probe__'], opts);
  if (!probe.failed || /No such file or directory/.test(probe.stderr)) return { ok: true, version };
  if (/JSON support not compiled-in/i.test(probe.stderr + probe.stdout)) {
    return {
      ok: false,
      reason: `nft ${version} was built without JSON support ("JSON support not compiled-in")`,
      fix: 'install an nftables package built with JSON support (libjansson), e.g. Debian/Ubuntu nftables',
    };
  }
  if (/Operation not permitted|Permission denied/i.test(probe.stderr)) {
    return { ok: false, reason: 'nft may not change the ruleset: not root', fix: 'run as root (CAP_NET_ADMIN)' };
  }
  return { ok: false, reason: `nft does not work: ${firstLine(probe)}`, fix: 'run `nft list tables` to see why' };
}

export type ConntrackResult =
  | { ok: true; deleted: number }
  | { ok: false; reason: string };

/**
 * Deletes UDP conntrack entries whose original destination port is `port`, so flows that
 * started before a hostPort was mapped (and so were never DNATed) stop going to the old place.
 * Uses the `conntrack` binary; exit 1 with "0 flow entries" means nothing matched. A missing
 * binary or other failure is returned, not thrown: the mapping works for new flows anyway, so
 * the caller logs it and carries on.
 */
export async function deleteUdpConntrack(port: number, family: IpFamily, opts: RunnerOptions = {}): Promise<ConntrackResult> {
  const o = { ...DEFAULTS, ...opts };
  const args = ['-D', '-f', family === 4 ? 'ipv4' : 'ipv6', '-p', 'udp', '--orig-port-dst', String(port)];
  const r = await settle((await execa())(resolveBinary(o.conntrack), args, { reject: false, timeout: o.timeoutMs, stdin: 'ignore' }));
  if (isNotFound(r)) return { ok: false, reason: `conntrack not found (${whereLooked(o.conntrack)}): install the conntrack package` };
  const text = `${r.stdout}\n${r.stderr}`;
  const n = /(\d+) flow entries have been deleted/.exec(text);
  if (n) return { ok: true, deleted: Number(n[1]) };
  if (r.exitCode === 1 && !r.stderr.trim()) return { ok: true, deleted: 0 };
  return { ok: false, reason: `conntrack ${args.join(' ')}: ${firstLine(r)}` };
}

interface RunResult {
  failed: boolean;
  exitCode?: number;
  stdout: string;
  stderr: string;
  code?: string;
  timedOut?: boolean;
  shortMessage?: string;
}

async function runNft(args: string[], opts: RunnerOptions): Promise<RunResult> {
  const o = { ...DEFAULTS, ...opts };
  return settle((await execa())(resolveBinary(o.nft), args, { reject: false, timeout: o.timeoutMs, stdin: 'ignore' }));
}

let execaFn: typeof import('execa').execa | undefined;

/**
 * execa, loaded at the first process Pier starts rather than at start-up: most plugin runs start
 * none (NAT changes go by netlink once a network is set up), and leaving execa and what it
 * pulls in out of the startup snapshot saves every run ~3 ms (the bundle keeps it, unevaluated).
 */
async function execa(): Promise<typeof import('execa').execa> {
  execaFn ??= (await import('execa')).execa;
  return execaFn;
}

async function settle(p: ResultPromise): Promise<RunResult> {
  const r = await p;
  return {
    failed: r.failed,
    exitCode: r.exitCode,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    code: (r as { code?: string }).code,
    timedOut: r.timedOut,
    shortMessage: (r as { shortMessage?: string }).shortMessage,
  };
}

function isNotFound(r: RunResult): boolean {
  return r.code === 'ENOENT' || /ENOENT/.test(r.shortMessage ?? '');
}

function whereLooked(name: string): string {
  return name.includes('/') ? name : `${name} in PATH and ${FALLBACK_DIRS.join(':')}`;
}

function firstLine(r: RunResult): string {
  const text = r.stderr.trim() || r.shortMessage || `exit code ${r.exitCode}`;
  // nft's JSON front end prefixes errors with "internal:0:0-0: ".
  return (text.split('\n').find((l) => l.trim()) ?? text).replace(/^internal:0:0-0: /, '');
}

function nftError(op: string, r: RunResult, context = ''): CniError {
  const why = r.timedOut ? 'timed out' : isNotFound(r) ? 'nft not found' : firstLine(r);
  const details = [r.stderr.trim(), context].filter(Boolean).join('\n');
  return new CniError(ErrorCode.Kernel, `nft ${op}: ${why}`, details);
}

function parseJsonOutput(stdout: string, op: string): unknown {
  try {
    return JSON.parse(stdout);
  } catch (err) {
    throw new CniError(ErrorCode.Kernel, `nft ${op}: output is not JSON`, stdout.slice(0, 500), { cause: err });
  }
}

/** What a failed transaction tried to do, for the error's details: counts per verb and object. */
function summarise(doc: NftDocument): string {
  const counts = new Map<string, number>();
  for (const cmd of doc.nftables) {
    for (const [verb, body] of Object.entries(cmd)) {
      if (verb === 'metainfo') continue;
      const what = body && typeof body === 'object' ? Object.keys(body)[0] : '';
      counts.set(`${verb} ${what}`, (counts.get(`${verb} ${what}`) ?? 0) + 1);
    }
  }
  return `transaction: ${[...counts].map(([k, n]) => `${n}x ${k}`).join(', ')}`;
}

/** A readable, writable file with `text` that has no name (or lost it before we return). */
function openAnonymousFile(text: string): number {
  let fd: number | undefined;
  for (const dir of ['/run', os.tmpdir()]) {
    try {
      fd = fs.openSync(dir, O_TMPFILE | O_RDWR, 0o600);
      break;
    } catch {
      // O_TMPFILE unsupported by this file system (or dir missing): try the next, then fall back.
    }
  }
  if (fd === undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pier-nft-'));
    const file = path.join(dir, 'tx.json');
    try {
      fd = fs.openSync(file, 'wx+', 0o600);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  try {
    fs.writeSync(fd, text);
  } catch (err) {
    fs.closeSync(fd);
    throw new CniError(ErrorCode.IoFailure, 'writing the nft transaction failed', '', { cause: err });
  }
  return fd;
}

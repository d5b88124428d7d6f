// SIGKILL a plugin at an exact point of its work, with no test hook in product code: strace
// runs the plugin (its main thread, which does all of Pier's work) and delivers SIGKILL on entry
// to the n-th call of one system call, so that call never happens. A trace of an uninterrupted
// call in the same state lists the points worth dying at (every call that changes a file, a
// link, an address, the nft table, or writes the reply); killing at each one in turn lands in
// every phase of the call, whatever the machine's speed, where a random delay lands wherever
// the load puts it.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, type CniCall, type CniReply, type TestWorld } from './cni-harness.ts';

/** System calls at whose entry a kill is a distinct point of the call. */
export const CHANGING_CALLS = ['openat', 'rename', 'link', 'unlink', 'write', 'sendto', 'sendmsg', 'setns', 'flock', 'mkdir', 'clone', 'clone3', 'exit_group'];

/** The `nth` call of `syscall` (1-based, counting only the plugin's main thread). */
export interface KillPoint {
  syscall: string;
  nth: number;
  /** How strace showed that call in the trace (for messages). */
  line: string;
}

export interface KilledReply extends CniReply {
  signal: NodeJS.Signals | null;
  /** The last call strace saw before the kill, as it printed it (for messages). */
  lastCall: string;
}

/**
 * What identifies a call across runs of the same request in the same state: the call and what
 * it acts on, without what varies from run to run (descriptors, sequence numbers, temp-file
 * suffixes, the container ID `cid` of the run, addresses handed out round robin, data).
 */
export function signature(line: string, cid: string): string {
  const name = /^([a-z_0-9]+)\(/.exec(line)?.[1] ?? '?';
  const norm = (x: string) => x.replaceAll(cid, 'CID').replace(/\.tmp-\d+-[0-9a-f]+/g, '.tmp').replace(/\d+\.\d+\.\d+\.\d+/g, 'IP');
  switch (name) {
    case 'sendto':
    case 'sendmsg':
      return `${name} ${/nlmsg_type=([^,]+)/.exec(line)?.[1]} ${/nlmsg_flags=([^,]+)/.exec(line)?.[1]}`;
    case 'flock':
      return `flock ${/, ([A-Z_|]+)\)/.exec(line)?.[1]}`;
    case 'write':
      // The reply, the log, a store file or an event: by what is written, not where.
      return `write ${line.startsWith('write(1,') ? 'stdout' : norm(/"(.{0,12})/.exec(line)?.[1] ?? '').replace(/\d/g, 'N')}`;
    case 'openat':
    case 'rename':
    case 'link':
    case 'unlink':
    case 'mkdir':
      return `${name} ${[...line.matchAll(/"([^"]*)"/g)].map((m) => norm(m[1]).replace(/^.*\//, '')).join(' ')}`;
    default:
      return name;
  }
}

/** `ip netns exec HOST strace ... env -i ENV... PLUGIN`: env is traced from its exec on. */
function straceArgv(w: TestWorld, call: CniCall, straceArgs: string[]): string[] {
  const env = Object.entries(w.env(call)).map(([k, v]) => `${k}=${v}`);
  return ['netns', 'exec', w.host, 'strace', '-qq', ...straceArgs, 'env', '-i', ...env, call.plugin ?? PIER];
}

function reply(status: number | null, stdout: string, stderr: string) {
  let json: any;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { status, stdout, stderr, json };
}

/** One call per line of an strace output file: [name, line]. Signal and exit lines are left out. */
function callsOf(file: string): Array<[string, string]> {
  return readFileSync(file, 'utf8').split('\n')
    .map((l) => [/^([a-z_0-9]+)\(/.exec(l)?.[1] ?? '', l] as [string, string])
    .filter(([name]) => name);
}

/**
 * Runs the call to completion under strace and returns its reply and its kill points: every
 * call of CHANGING_CALLS the main thread made, in order. Runs synchronously.
 */
export function traceKillPoints(w: TestWorld, call: CniCall, stdin: unknown): { reply: CniReply; points: KillPoint[] } {
  const file = join(w.dataDir, `trace-${process.pid}-${Date.now()}.strace`);
  const r = spawnSync('ip', straceArgv(w, call, ['-o', file, '-e', `trace=${CHANGING_CALLS.join(',')}`]), {
    input: JSON.stringify(stdin), encoding: 'utf8', timeout: 120_000,
  });
  const seen = new Map<string, number>();
  const points: KillPoint[] = [];
  for (const [syscall, line] of callsOf(file)) {
    const nth = (seen.get(syscall) ?? 0) + 1;
    seen.set(syscall, nth);
    points.push({ syscall, nth, line });
  }
  rmSync(file, { force: true });
  return { reply: reply(r.status, r.stdout, r.stderr), points };
}

/**
 * Runs the call under strace, which SIGKILLs the plugin on entry to `at` (`at.syscall`'s
 * `at.nth` call). Resolves when it has ended: `signal` is SIGKILL when the kill landed (strace
 * dies of the signal its tracee died of), null when the call ended before reaching that point.
 */
export function callKilledAt(w: TestWorld, call: CniCall, stdin: unknown, at: KillPoint): Promise<KilledReply> {
  const file = join(w.dataDir, `kill-${process.pid}-${Date.now()}.strace`);
  const child = spawn('ip', straceArgv(w, call, [
    '-o', file, '-e', `trace=${at.syscall}`, '-e', `inject=${at.syscall}:signal=KILL:when=${at.nth}`,
  ]), { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  child.stdin.end(JSON.stringify(stdin));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  return new Promise((resolve) => {
    child.on('close', (status, signal) => {
      let lastCall = '';
      try {
        lastCall = callsOf(file).at(-1)?.[1] ?? '';
      } catch {
        // no trace file: strace itself could not start
      }
      rmSync(file, { force: true });
      resolve({ ...reply(status, stdout, stderr), signal, lastCall });
    });
  });
}

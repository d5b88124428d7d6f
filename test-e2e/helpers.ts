// Shared helpers of the e2e tests: unique names, `ip -j` queries, and cleanup that always runs.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** A short unique prefix for this test file's netns, links and tables: `pt` + 4 hex. */
export function uniquePrefix(): string {
  return `pt${randomBytes(2).toString('hex')}`;
}

/** Runs a command (argument array, no shell) and returns stdout; throws with stderr on failure. */
export function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** `ip -j [-n ns] ARGS` parsed. */
export function ipJson<T = any>(ns: string | undefined, ...args: string[]): T {
  const out = run('ip', [...(ns ? ['-n', ns] : []), '-j', ...args]);
  return JSON.parse(out || '[]') as T;
}

/** Runs a command inside a named netns; returns {status, stdout, stderr}. */
export function inNs(ns: string, cmd: string, args: string[]) {
  const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function ping(ns: string, addr: string): boolean {
  const six = addr.includes(':');
  return inNs(ns, 'ping', [...(six ? ['-6'] : []), '-c', '1', '-W', '2', addr]).status === 0;
}

/**
 * Polls `cond` until it holds; fails naming `what` after `timeoutMs` (a generous deadline, not
 * a measurement: on a loaded machine things take their time, and only a hang should fail).
 */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Collects cleanup steps; `runAll` runs every one, ignoring failures, newest first. */
export class Cleanup {
  private steps: Array<() => void> = [];
  add(step: () => void): void {
    this.steps.push(step);
  }
  addNetns(name: string): void {
    this.add(() => spawnSync('ip', ['netns', 'del', name]));
  }
  addLink(name: string, ns?: string): void {
    this.add(() => spawnSync('ip', [...(ns ? ['-n', ns] : []), 'link', 'del', name]));
  }
  runAll(): void {
    for (const step of this.steps.reverse()) {
      try {
        step();
      } catch {
        /* keep going: every step must get its chance */
      }
    }
    this.steps = [];
  }
}

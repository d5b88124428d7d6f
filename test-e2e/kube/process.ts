// One long-running process of the test cluster (etcd, kube-apiserver, a forwarder...), optionally
// inside a netns, with its output in a log file. Ended by its own PID only. `ip netns exec` execs
// the program in place, so the PID we hold is the program's, not a wrapper's.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

// Every process still running, so that a test process that exits without calling stop() (a crash,
// a forgotten after()) does not leave an apiserver behind: the exit hook SIGKILLs them by PID.
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) p.kill('SIGKILL');
  });
}

export interface SpawnSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  netns?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep stdout as a pipe (readLine) instead of sending it to the log. */
  pipeStdout?: boolean;
}

export class ManagedProcess {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number;
  private readonly child: ChildProcess;
  private exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;

  constructor(spec: SpawnSpec) {
    installExitHook();
    this.name = spec.name;
    this.logFile = spec.logFile;
    const [cmd, args] = spec.netns
      ? ['ip', ['netns', 'exec', spec.netns, spec.command, ...spec.args]]
      : [spec.command, spec.args];
    const log = openSync(spec.logFile, 'a');
    try {
      this.child = spawn(cmd, args, {
        stdio: ['ignore', spec.pipeStdout ? 'pipe' : log, log],
        env: spec.env ?? process.env,
      });
    } finally {
      closeSync(log);
    }
    if (this.child.pid === undefined) throw new Error(`${spec.name}: could not start ${cmd}`);
    this.pid = this.child.pid;
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      });
    });
    // The child may not keep the test process alive on its own (its stdout pipe does, until
    // readLine has its line).
    this.child.unref();
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** How it ended, for error messages; undefined while it runs. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** The first line it prints on stdout (pipeStdout), or an error with its log if it exits first. */
  async readLine(): Promise<string> {
    const stdout = this.child.stdout;
    if (!stdout) throw new Error(`${this.name}: stdout is not a pipe`);
    const rl = createInterface({ input: stdout });
    try {
      // Not Promise.race with a rejecting branch: that branch would reject, unhandled, when the
      // process exits long after its line was read.
      const result = await Promise.race([
        new Promise<{ line: string }>((resolve) => rl.once('line', (line) => resolve({ line }))),
        this.exited.then((e) => ({ exit: e })),
      ]);
      if ('exit' in result) throw this.failure(`exited (${describeExit(result.exit)}) before it was ready`);
      return result.line;
    } finally {
      rl.close();
      (stdout as Readable & { unref?: () => void }).unref?.();
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** SIGTERM, wait up to graceMs for it to exit, then SIGKILL and wait. */
  async stop(graceMs = 30_000): Promise<void> {
    if (!this.running) return;
    // Waiting for its exit must keep the test process alive (the child is unref'd).
    this.child.ref();
    this.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!graceful) {
      this.kill('SIGKILL');
      await this.exited;
    }
  }

  /** The last lines of its log. */
  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** An Error naming this process, with the tail of its log. */
  failure(what: string): Error {
    return new Error(`${this.name} ${what}; last lines of ${this.logFile}:\n${this.logTail()}`);
  }
}

export function describeExit(e: ExitInfo): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

/** Throws the failure of the first process in the list that has exited. */
export function throwIfAnyExited(procs: Array<ManagedProcess | undefined>): void {
  for (const p of procs) {
    if (p && !p.running) throw p.failure(`exited (${describeExit(p.exit!)})`);
  }
}

/**
 * Keeps a by-hand script (kube-up, kube-node-up) running until Ctrl-C or SIGTERM, then runs
 * `stop` once (which removes what the script made) and exits 0.
 */
export function stayUpUntilSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  setInterval(() => {}, 1 << 30);
}

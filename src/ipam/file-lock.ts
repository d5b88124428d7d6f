// A bounded exclusive flock(2) on a lock file: poll LOCK_NB with short synchronous sleeps.
import * as fs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { LOCK_EX, LOCK_NB, LOCK_UN, flock } from '../netlink/libc.ts';
import { ioError } from './fs-atomic.ts';

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

// Made at first use: the V8 startup snapshot cannot hold a SharedArrayBuffer.
let sleeper: Int32Array | undefined;

/** Blocks the thread for ms (the plugin is a short-lived synchronous process). */
function sleepSync(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * How long a waiter sleeps between tries, by how long it has waited: 20 ms at first, down to
 * 1 ms after ~1 s. Older waiters poll more often, so they win the race when the holder lets go.
 * (A backoff that grows does the opposite: newcomers poll fast, old waiters slowly, and under
 * 16-way contention some waiter loses every race for 10 s and fails with code 11.)
 */
export function pollPause(waitedMs: number): number {
  return Math.max(1, 20 >> Math.floor(waitedMs / 200));
}

/**
 * Opens (creating, mode 0600) and locks path; returns the fd to pass to `unlockFile`. Gives up
 * after timeoutMs with CniError 11, so a wedged peer makes the runtime retry instead of hang.
 * flock locks belong to the open file description, so two opens in one process do conflict.
 */
export function lockFile(path: string, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): number {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  } catch (err) {
    // On a read-only file system an existing lock file can still be opened for reading, and
    // flock works on any fd: DEL can then read its record and remove the veth and NAT entries,
    // and fail only where it must write (releasing the addresses), with code 5.
    if ((err as NodeJS.ErrnoException).code !== 'EROFS') throw ioError(err, 'open', path);
    try {
      fd = fs.openSync(path, fs.constants.O_RDONLY);
    } catch (err2) {
      throw ioError(err2, 'open', path);
    }
  }
  try {
    const start = Date.now();
    const deadline = start + timeoutMs;
    while (!flock(fd, LOCK_EX | LOCK_NB, path)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CniError(
          ErrorCode.TryAgainLater,
          `${path} is locked by another Pier process for more than ${timeoutMs} ms: try again later`,
          path,
        );
      }
      sleepSync(Math.min(pollPause(Date.now() - start), left));
    }
    return fd;
  } catch (err) {
    fs.closeSync(fd);
    if (err instanceof CniError) throw err;
    throw new CniError(ErrorCode.IoFailure, `IPAM store: cannot lock ${path}: ${(err as Error).message}`, path, { cause: err });
  }
}

/** Unlocks and closes (closing alone would unlock too; being explicit costs nothing). */
export function unlockFile(fd: number, path: string): void {
  try {
    flock(fd, LOCK_UN, path);
  } finally {
    fs.closeSync(fd);
  }
}

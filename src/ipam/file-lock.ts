// A bounded exclusive flock(2) on a lock file: poll LOCK_NB with short synchronous sleeps.
import * as fs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { LOCK_EX, LOCK_NB, LOCK_UN, flock } from '../netlink/libc.ts';
import { errnoCode, ioError } from './fs-atomic.ts';

export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;

// Made at first use: the V8 startup snapshot cannot hold a SharedArrayBuffer.
let sleeper: Int32Array | undefined;

/** Blocks the thread for ms, fractions included (the plugin is a short-lived synchronous process). */
function sleepSync(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * How long a waiter sleeps between tries, by how long it has waited: 2 ms at first, 1 ms after
 * 200 ms. A holder keeps the lock for a millisecond or two, so a longer sleep only makes the
 * waiter oversleep the hand-over while the lock sits free (and a burst of ADDs queues up behind
 * idle sleepers). Older waiters still poll more often, so they win the race when the holder
 * lets go: a backoff that grows does the opposite (newcomers poll fast, old waiters slowly) and
 * under 16-way contention starves some waiter into code 11. flock without LOCK_NB cannot be
 * bounded in a synchronous process (no SIGALRM in Node), hence the polling; a try is one
 * syscall, so polling every millisecond costs nothing measurable.
 */
export function pollPause(waitedMs: number): number {
  return waitedMs < 200 ? 2 : 1;
}

/** A lock taken by `acquireLock`; pass `fd` to `unlockFile`. */
export interface HeldLock {
  fd: number;
  /** True when the lock file could only be opened for reading (a read-only file system). */
  readOnly: boolean;
}

/**
 * Opens (creating, mode 0600) and locks path. Gives up after timeoutMs with CniError 11 saying
 * that `label` is busy ("IPAM store of network x", "nft lock"), so a wedged peer makes the
 * runtime retry instead of hang. flock locks belong to the open file description, so two opens
 * in one process do conflict.
 */
export function acquireLock(path: string, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS, label = 'lock'): HeldLock {
  let fd: number;
  let readOnly = false;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  } catch (err) {
    // On a read-only file system an existing lock file can still be opened for reading, and
    // flock works on any fd: DEL can then read its record and remove the veth and NAT entries,
    // and fail only where it must write (releasing the addresses), with code 5.
    if (errnoCode(err) !== 'EROFS') throw ioError(err, 'open', path, label);
    try {
      fd = fs.openSync(path, fs.constants.O_RDONLY);
      readOnly = true;
    } catch (err2) {
      throw ioError(err2, 'open', path, label);
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
          `${label} is busy: ${path} has been locked by another Pier process for more than ${timeoutMs} ms: try again later`,
          path,
        );
      }
      sleepSync(Math.min(pollPause(Date.now() - start), left));
    }
    return { fd, readOnly };
  } catch (err) {
    fs.closeSync(fd);
    if (err instanceof CniError) throw err;
    throw ioError(err, 'flock', path, label);
  }
}

/** acquireLock for callers that only need the fd. */
export function lockFile(path: string, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS, label = 'lock'): number {
  return acquireLock(path, timeoutMs, label).fd;
}

/** Unlocks and closes (closing alone would unlock too; being explicit costs nothing). */
export function unlockFile(fd: number, path: string): void {
  try {
    flock(fd, LOCK_UN, path);
  } finally {
    fs.closeSync(fd);
  }
}

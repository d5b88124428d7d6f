// The host-wide nft lock, shared and exclusive. ADD, DEL and GC need no exclusion from each
// other (the kernel refuses a taken host port inside their one transaction), so they hold it
// shared and never wait for each other; `pier resync` holds it exclusively, because it reads the
// records and then rewrites the table: an ADD or DEL in between would be undone by it.
import * as fs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, flock } from '../netlink/libc.ts';
import { DEFAULT_LOCK_TIMEOUT_MS, pollPause } from '../ipam/file-lock.ts';

const LOCK_DIR = '/run/pier';
const LOCK_FILE = `${LOCK_DIR}/nft.lock`;

export type NftLockMode = 'shared' | 'exclusive';

// Made at first use: the V8 startup snapshot cannot hold a SharedArrayBuffer.
let sleeper: Int32Array | undefined;

/** Runs fn holding the nft lock in `mode`; gives up after timeoutMs with CniError 11. */
export async function withNftLock<T>(mode: NftLockMode, fn: () => Promise<T>, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<T> {
  const fd = openLockFile();
  try {
    const op = (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB;
    const start = Date.now();
    while (!flock(fd, op, LOCK_FILE)) {
      const waited = Date.now() - start;
      if (waited >= timeoutMs) {
        throw new CniError(ErrorCode.TryAgainLater, `${LOCK_FILE} is locked by another Pier process for more than ${timeoutMs} ms: try again later`, LOCK_FILE);
      }
      sleeper ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(sleeper, 0, 0, Math.min(pollPause(waited), timeoutMs - waited));
    }
    return await fn();
  } finally {
    try {
      flock(fd, LOCK_UN, LOCK_FILE);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Opens (creating) the lock file; the directory is made only the first time it is missing. */
function openLockFile(): number {
  const open = () => fs.openSync(LOCK_FILE, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  try {
    return open();
  } catch (err) {
    // A read-only /run: an existing lock file still opens for reading, and flock works on it.
    if ((err as NodeJS.ErrnoException).code === 'EROFS') return fs.openSync(LOCK_FILE, fs.constants.O_RDONLY);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new CniError(ErrorCode.IoFailure, `cannot open ${LOCK_FILE}: ${(err as Error).message}`, LOCK_FILE, { cause: err });
    }
  }
  fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  return open();
}

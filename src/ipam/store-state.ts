// The disk store's state line, kept in its lock file: the boot last swept, and whether a change
// under the lock was left unfinished (disk-store.ts's header says how both are used).
import type { HeldLock } from './file-lock.ts';
import { type Fs, ioError } from './fs-atomic.ts';

export interface StoreState {
  /** The boot whose stale attachments were released; undefined when unknown. */
  sweptBoot?: string;
  /** A change was started and not seen to finish: repair before trusting the store. */
  dirty: boolean;
}

/** The line's size: always written whole at offset 0, so it fits in one sector and never grows. */
export const STATE_BYTES = 128;
const STATE_LINE = /^pier-ipam-state 1 boot=(\S+) (clean|dirty) *$/;
/** What a boot id must look like to go into the line (the kernel's is a UUID). */
const BOOT_ID = /^[\x21-\x7e]{1,80}$/;

export function isRecordableBootId(bootId: string): boolean {
  return BOOT_ID.test(bootId);
}

export function parseState(line: string): StoreState {
  const m = STATE_LINE.exec(line);
  // Unreadable (a new lock file, an older Pier's empty one, or torn by a power cut): trust nothing.
  if (!m) return { dirty: true };
  return { ...(m[1] !== '-' && { sweptBoot: m[1] }), dirty: m[2] === 'dirty' };
}

/** `pier-ipam-state 1 boot=<id> clean`, padded with spaces to STATE_BYTES, newline last. */
export function formatState(state: StoreState): Buffer {
  const line = `pier-ipam-state 1 boot=${state.sweptBoot ?? '-'} ${state.dirty ? 'dirty' : 'clean'}`;
  const buf = Buffer.alloc(STATE_BYTES, ' ');
  buf.write(line, 'latin1');
  buf[STATE_BYTES - 1] = 0x0a;
  return buf;
}

/** Reads the line through the held lock's fd (pread: one syscall, no open). */
export function readStateLine(fs: Fs, fd: number, path: string): StoreState {
  const buf = Buffer.alloc(STATE_BYTES);
  let n: number;
  try {
    n = fs.readSync(fd, buf, 0, STATE_BYTES, 0);
  } catch (err) {
    throw ioError(err, 'read', path);
  }
  return parseState(buf.toString('latin1', 0, n).split('\n')[0]);
}

/** Overwrites the line in place (pwrite at offset 0). */
export function writeStateLine(fs: Fs, lock: HeldLock, path: string, state: StoreState): void {
  if (lock.readOnly) {
    // acquireLock fell back to a read-only fd because the file system is read-only.
    throw ioError(Object.assign(new Error('EROFS'), { code: 'EROFS' }), 'write', path);
  }
  try {
    fs.writeSync(lock.fd, formatState(state), 0, STATE_BYTES, 0);
  } catch (err) {
    throw ioError(err, 'write', path);
  }
}

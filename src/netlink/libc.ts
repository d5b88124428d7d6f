// libc: the only module that touches native code. Thin synchronous wrappers over the system
// calls Pier needs, each throwing SysError with errno, its name, the call and the object.
import { constants as osConstants } from 'node:os';
import { startupSnapshot } from 'node:v8';
import { loadKoffi } from '../native/load-koffi.ts';
import { mark } from '../trace.ts';

/** A failed system call: `setns /var/run/netns/x: EINVAL`. */
export class SysError extends Error {
  override readonly name = 'SysError';
  constructor(
    readonly errno: number,
    readonly op: string,
    readonly object = '',
    readonly extack = '',
  ) {
    const what = object ? `${op} ${object}` : op;
    super(`${what}: ${errnoName(errno)}${extack ? ` (${extack})` : ''}`);
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, num]) => [num as number, name]),
);

/** `17` -> `EEXIST`. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** Looks up an errno by name, e.g. `errnoOf('ENOENT')`. */
export function errnoOf(name: keyof typeof osConstants.errno): number {
  return osConstants.errno[name];
}

type Fn = (...args: unknown[]) => number | bigint;
/** The system calls Pier makes through koffi (a stand-in for the snapshot warm-up has them too). */
export interface SystemCalls {
  socket: Fn; bind: Fn; setsockopt: Fn; sendto: Fn; recv: Fn; close: Fn; open: Fn;
  setns: Fn; flock: Fn; ioctl: Fn; unshare: Fn; mount: Fn; umount2: Fn; getsockname: Fn; _exit: Fn; pipe2: Fn;
  errno: () => number;
}

let calls: SystemCalls | undefined;
let fake: SystemCalls | undefined;
let lib: ReturnType<ReturnType<typeof loadKoffi>['load']> | undefined;
let trim: Fn | undefined;
let madv: Fn | undefined;

/**
 * Sends every call below to `stand-in` instead of the kernel (the snapshot warm-up's pretend
 * kernel, warm-up-kernel.ts), or, with undefined, to the kernel again.
 */
export function useFakeSystemCalls(standIn: SystemCalls | undefined): void {
  fake = standIn;
}

/** True while the calls go to a stand-in: code that reaches the kernel another way must not. */
export function systemCallsFaked(): boolean {
  return fake !== undefined;
}

function libc(): SystemCalls {
  if (fake) return fake;
  if (calls) return calls;
  // A native addon cannot be in the startup snapshot: the build's warm-up (warm-up.ts) runs
  // against a stand-in.
  if (startupSnapshot.isBuildingSnapshot()) throw new Error('no system calls while the startup snapshot is built');
  mark('libc: start');
  const koffi = loadKoffi();
  mark('libc: koffi loaded');
  const handle = koffi.load('libc.so.6');
  lib = handle;
  mark('libc: libc loaded');
  const f = (decl: string) => handle.func(decl) as unknown as Fn;
  calls = {
    socket: f('int socket(int domain, int type, int protocol)'),
    bind: f('int bind(int fd, const void *addr, uint32_t len)'),
    getsockname: f('int getsockname(int fd, _Inout_ void *addr, _Inout_ uint32_t *len)'),
    setsockopt: f('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)'),
    sendto: f('intptr_t sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)'),
    recv: f('intptr_t recv(int fd, void *buf, size_t len, int flags)'),
    close: f('int close(int fd)'),
    open: f('int open(const char *path, int flags, uint32_t mode)'),
    setns: f('int setns(int fd, int nstype)'),
    flock: f('int flock(int fd, int op)'),
    ioctl: f('int ioctl(int fd, unsigned long req)'),
    unshare: f('int unshare(int flags)'),
    mount: f('int mount(const char *src, const char *dst, const char *fstype, unsigned long flags, const void *data)'),
    umount2: f('int umount2(const char *path, int flags)'),
    _exit: f('void _exit(int status)'),
    pipe2: f('int pipe2(void *fds, int flags)'),
    errno: () => koffi.errno(),
  };
  mark('libc: declared');
  return calls;
}

function check(ret: number | bigint, op: string, object?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(libc().errno(), op, object);
  return n;
}

export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVTIMEO = 20;
export const SO_RCVBUFFORCE = 33;
export const SOL_NETLINK = 270;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;
export const NETLINK_CAP_ACK = 10;
export const CLONE_NEWNET = 0x40000000;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_SHARED = 1 << 20;
export const MNT_DETACH = 2;

export function socket(domain: number, type: number, protocol: number): number {
  return check(libc().socket(domain, type | SOCK_CLOEXEC, protocol), 'socket');
}

export function bind(fd: number, addr: Buffer): void {
  check(libc().bind(fd, addr, addr.length), 'bind');
}

/** Returns the bound address (for netlink: the port id the kernel picked). */
export function getsockname(fd: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  const len = [size];
  check(libc().getsockname(fd, buf, len), 'getsockname');
  return buf.subarray(0, len[0]);
}

export function setsockopt(fd: number, level: number, name: number, value: Buffer): void {
  check(libc().setsockopt(fd, level, name, value, value.length), 'setsockopt', `${level}/${name}`);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(value);
  setsockopt(fd, level, name, b);
}

/** Sets SO_RCVTIMEO so a lost reply ends in EAGAIN instead of a hung plugin. */
export function setRecvTimeout(fd: number, ms: number): void {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv);
}

export function sendto(fd: number, buf: Buffer, addr: Buffer): number {
  return check(libc().sendto(fd, buf, buf.length, 0, addr, addr.length), 'sendto');
}

/** Receives into buf; returns the byte count (which with MSG_TRUNC|MSG_PEEK is the full size). */
export function recv(fd: number, buf: Buffer, flags = 0): number {
  return check(libc().recv(fd, buf, buf.length, flags), 'recv');
}

export function close(fd: number): void {
  check(libc().close(fd), 'close');
}

export function open(path: string, flags: number, mode = 0): number {
  return check(libc().open(path, flags | 0o2000000 /* O_CLOEXEC */, mode), 'open', path);
}

/** Moves the calling thread (for Node: the main JS thread) into the namespace fd refers to. */
export function setns(fd: number, nstype: number, object = ''): void {
  check(libc().setns(fd, nstype), 'setns', object);
}

/** flock(2). With LOCK_NB, returns false when the lock is held elsewhere. */
export function flock(fd: number, op: number, object = ''): boolean {
  const ret = Number(libc().flock(fd, op));
  if (ret === 0) return true;
  const errno = libc().errno();
  if (errno === errnoOf('EWOULDBLOCK') && op & LOCK_NB) return false;
  throw new SysError(errno, 'flock', object);
}

/** NS_GET_NSTYPE: the CLONE_NEW* type of the namespace an nsfs fd refers to. */
export const NS_GET_NSTYPE = 0xb703;

/** ioctl(2) without an argument; returns its non-negative result. */
export function ioctl(fd: number, req: number, object = ''): number {
  return check(libc().ioctl(fd, req), 'ioctl', object);
}

/** pipe2(2) with O_CLOEXEC: [read end, write end]. A real pipe, unlike Node's stdio "pipes" (sockets). */
export function pipe(): [number, number] {
  const fds = Buffer.alloc(8);
  check(libc().pipe2(fds, 0o2000000 /* O_CLOEXEC */), 'pipe2');
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

export function unshare(flags: number): void {
  check(libc().unshare(flags), 'unshare');
}

export function mount(src: string | null, dst: string, fstype: string | null, flags: number): void {
  check(libc().mount(src, dst, fstype, flags, null), 'mount', dst);
}

export function umount2(path: string, flags: number): void {
  check(libc().umount2(path, flags), 'umount2', path);
}

/**
 * Ends the process at once with `code` (_exit(2)) when libc is already loaded, and returns
 * false otherwise. For the end of a plugin run: the reply and the log are written synchronously,
 * nothing else is pending, and Node's exit (exit handlers, platform teardown) cost ~1 ms more.
 */
export function exitNow(code: number): boolean {
  if (!calls || fake) return false;
  calls._exit(code);
  return true;
}

/**
 * glibc's malloc_trim(0): hands the free pages of every malloc arena back to the kernel, holes
 * between live chunks included (free() alone returns only a large free top of the main heap).
 * True when some memory was released. For a long-running process after a burst (`pier agent`
 * after a list); declared at first use, so a plugin run does not pay for the declaration.
 */
export function mallocTrim(): boolean {
  if (fake) return false;
  libc();
  trim ??= lib!.func('int malloc_trim(size_t pad)') as unknown as Fn;
  return Number(trim(0)) === 1;
}

export const MADV_DONTNEED = 4;

/** madvise(2) on [addr, addr + len); addr page-aligned. Declared at first use, like mallocTrim. */
export function madvise(addr: bigint, len: bigint, advice: number): void {
  if (fake) return;
  libc();
  madv ??= lib!.func('int madvise(uintptr_t addr, size_t len, int advice)') as unknown as Fn;
  check(madv(addr, len, advice), 'madvise');
}

// Network namespaces: identify them, run a synchronous step inside one, open netlink sockets
// there, and create or delete named namespaces under /run/netns without the `ip` binary.
import * as fs from 'node:fs';
import * as libc from './libc.ts';
import { CLONE_NEWNET, SysError } from './libc.ts';
import { NetlinkSocket } from './socket.ts';

export const NETNS_RUN_DIR = '/run/netns';
/** This thread's netns. The main JS thread is the thread group leader, so /proc/self is it. */
const OWN_NETNS = '/proc/thread-self/ns/net';

/** Device and inode of a netns file: equal identities mean the same namespace. */
export interface NetnsIdentity {
  dev: number;
  ino: number;
}

/** Identifies the netns at `path` (a /proc/PID/ns/net link or a bind mount under /run/netns). */
export function netnsIdentity(path: string): NetnsIdentity {
  const st = fs.statSync(path);
  return { dev: st.dev, ino: st.ino };
}

/** The identity of the netns Pier itself runs in. */
export function ownNetnsIdentity(): NetnsIdentity {
  return netnsIdentity(OWN_NETNS);
}

export function sameNetns(a: NetnsIdentity, b: NetnsIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** True when `path` is a network namespace file (nsfs), not a file, directory or other namespace. */
export function isNetnsFile(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    if (!fs.fstatSync(fd).isFile() && !fs.fstatSync(fd).isSymbolicLink()) {
      // nsfs inodes stat as regular-ish files; anything else (dirs, fifos, devices) is not one.
      return false;
    }
    return libc.ioctl(fd, libc.NS_GET_NSTYPE, path) === CLONE_NEWNET;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Switches the thread back to Pier's own netns. If that fails the process aborts: carrying on
 * in the wrong netns could delete the host's interfaces.
 */
function returnToOwnNetns(own: number): void {
  try {
    libc.setns(own, CLONE_NEWNET, 'back to own netns');
  } catch (err) {
    process.stderr.write(`pier: FATAL: cannot return to own netns: ${String(err)}\n`);
    process.abort();
  }
}

/**
 * Runs `fn` with the calling thread switched into the netns at `path`, then switches back.
 * `fn` must be synchronous: nothing may await, spawn or call into the thread pool while switched.
 * If switching back fails the process aborts: carrying on in the wrong netns could delete the
 * host's interfaces.
 */
export function inNetns<T>(path: string, fn: () => T): T {
  const target = fs.openSync(path, fs.constants.O_RDONLY);
  let own: number;
  try {
    own = fs.openSync(OWN_NETNS, fs.constants.O_RDONLY);
  } catch (err) {
    fs.closeSync(target);
    throw err;
  }
  try {
    libc.setns(target, CLONE_NEWNET, path);
    try {
      const res = fn();
      if (res instanceof Promise) throw new Error('inNetns: fn must be synchronous');
      return res;
    } finally {
      returnToOwnNetns(own);
    }
  } finally {
    fs.closeSync(target);
    fs.closeSync(own);
  }
}

/** Opens a netlink socket inside the netns at `path`; the socket stays bound to that netns. */
export function openNetnsSocket(path: string): NetlinkSocket {
  return inNetns(path, () => NetlinkSocket.open());
}

/** Opens a netns file for IFLA_NET_NS_FD; the caller closes it. */
export function openNetnsFd(path: string): number {
  return fs.openSync(path, fs.constants.O_RDONLY);
}

/** Opens an fd to Pier's own netns (for creating a veth peer back in it). */
export function openOwnNetnsFd(): number {
  return openNetnsFd(OWN_NETNS);
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new Error(`invalid netns name ${JSON.stringify(name)}`);
}

export function namedNetnsPath(name: string): string {
  checkName(name);
  return `${NETNS_RUN_DIR}/${name}`;
}

/** Makes /run/netns a shared mount point, as `ip netns add` does, so mounts propagate. */
function ensureRunDir(): void {
  fs.mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  try {
    libc.mount('', NETNS_RUN_DIR, 'none', libc.MS_SHARED | libc.MS_REC);
  } catch (err) {
    if (!(err instanceof SysError) || err.code !== 'EINVAL') throw err;
    libc.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', libc.MS_BIND | libc.MS_REC);
    libc.mount('', NETNS_RUN_DIR, 'none', libc.MS_SHARED | libc.MS_REC);
  }
}

/** Creates the named netns `/run/netns/NAME` (EEXIST when it exists); returns its path. */
export function createNamedNetns(name: string): string {
  const path = namedNetnsPath(name);
  ensureRunDir();
  fs.closeSync(fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o444));
  const own = fs.openSync(OWN_NETNS, fs.constants.O_RDONLY);
  try {
    libc.unshare(CLONE_NEWNET);
    try {
      libc.mount(OWN_NETNS, path, 'none', libc.MS_BIND);
    } finally {
      returnToOwnNetns(own);
    }
  } catch (err) {
    fs.rmSync(path, { force: true });
    throw err;
  } finally {
    fs.closeSync(own);
  }
  return path;
}

/** Deletes the named netns; a missing one is fine. */
export function deleteNamedNetns(name: string): void {
  const path = namedNetnsPath(name);
  try {
    libc.umount2(path, libc.MNT_DETACH);
  } catch (err) {
    if (!(err instanceof SysError) || (err.code !== 'EINVAL' && err.code !== 'ENOENT')) throw err;
  }
  fs.rmSync(path, { force: true });
}

// Finds koffi's native module: inside the single executable it is an embedded asset, loaded
// from a place no unprivileged user can write; in development it comes from node_modules.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type * as Koffi from 'koffi';
import { mark } from '../trace.ts';

export type KoffiModule = typeof Koffi;

/** Name of the SEA asset that holds koffi.node (see scripts/build.mjs). */
export const KOFFI_ASSET = 'koffi.node';
/** Name of the SEA asset that holds koffi.node's sha256 in hex, computed at build time. */
export const KOFFI_SHA256_ASSET = 'koffi.node.sha256';
/** Where a copy of koffi.node is kept between runs: tmpfs (gone at boot), root-only. */
export const KEPT_DIR = '/run/pier/native';

// O_TMPFILE makes an unnamed inode: nobody else can open, replace or race on it, whatever the
// directory's permissions. Its value on Linux (x86_64, arm64) is __O_TMPFILE | O_DIRECTORY.
const O_TMPFILE = 0o20000000 | 0o200000;
const O_RDWR = 2;

let cached: KoffiModule | undefined;

/** Loads koffi once per process. */
export function loadKoffi(): KoffiModule {
  if (cached) return cached;
  const asset = readSeaAsset(KOFFI_ASSET);
  if (asset) {
    cached = loadFromBytes(asset, readSeaAsset(KOFFI_SHA256_ASSET)?.toString('latin1').trim());
  } else {
    const { createRequire } = process.getBuiltinModule('node:module');
    cached = createRequire(__filenameOrCwd())('koffi') as KoffiModule;
  }
  return cached;
}

function __filenameOrCwd(): string {
  // In the dev bundle and under tsx this file has a real path; fall back to the cwd otherwise.
  return typeof __filename === 'string' ? __filename : `${process.cwd()}/`;
}

function readSeaAsset(name: string): Buffer | undefined {
  const sea = process.getBuiltinModule('node:sea');
  if (!sea?.isSea()) return undefined;
  try {
    return Buffer.from(sea.getRawAsset(name) as ArrayBuffer);
  } catch {
    return undefined; // an executable built before the asset existed
  }
}

function loadFromBytes(bytes: Buffer, sha256: string | undefined): KoffiModule {
  const mod = { exports: {} as KoffiModule };
  // 1. The copy kept in KEPT_DIR by an earlier run: four stats and the dlopen, where writing the
  //    1.1 MB module to a fresh inode cost ~1 ms on every plugin run.
  const kept = sha256 && /^[0-9a-f]{64}$/.test(sha256) ? keptCopy(bytes, sha256) : undefined;
  if (kept) {
    try {
      process.dlopen(mod, kept);
      return mod.exports;
    } catch {
      // A noexec /run: fall through.
    }
  }
  // 2. An unnamed inode of its own.
  const fd = openAnonymous(bytes);
  mark('koffi: written');
  if (fd !== undefined) {
    try {
      process.dlopen(mod, `/proc/self/fd/${fd}`);
      return mod.exports;
    } catch {
      // A noexec mount refuses the mapping: fall through to the root-only directory.
    } finally {
      fs.closeSync(fd);
    }
  }
  // 3. A verified, content-addressed file under /var/lib.
  process.dlopen(mod, writeContentAddressed(bytes));
  return mod.exports;
}

/** Whether `dir` is a directory owned by `uid` that nobody else can write to. */
function ownDir(dir: string, uid: number): boolean {
  const st = fs.lstatSync(dir);
  return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
}

/**
 * `KEPT_DIR/koffi-<sha256 prefix>.node`, written (temp file, then rename) if it is not there
 * yet. Trusted as far as its directories are: both must be owned by this user and not group or
 * world-writable, so only this user (root, for a plugin) could have put a file there, and the
 * file itself must be this user's, not writable by others, and of the asset's size. The name
 * carries the hash the build computed, so another Pier version keeps its own copy. Undefined
 * when that cannot be had (not root, a foreign directory): the caller uses an unnamed inode.
 */
export function keptCopy(bytes: Buffer, sha256: string, keptDir = KEPT_DIR): string | undefined {
  const uid = process.getuid?.() ?? -1;
  const parent = keptDir.slice(0, keptDir.lastIndexOf('/'));
  const file = `${keptDir}/koffi-${sha256.slice(0, 32)}.node`;
  try {
    try {
      const st = fs.lstatSync(file);
      if (st.isFile() && st.uid === uid && (st.mode & 0o022) === 0 && st.size === bytes.length && ownDir(keptDir, uid) && ownDir(parent, uid)) return file;
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return undefined;
    }
    fs.mkdirSync(keptDir, { recursive: true, mode: 0o700 });
    if (!ownDir(keptDir, uid) || !ownDir(parent, uid)) return undefined;
    placeReadOnly(file, bytes);
    return file;
  } catch {
    return undefined;
  }
}

/** Writes `file` (mode 0500) whole or not at all: a temp file beside it, renamed into place. */
function placeReadOnly(file: string, bytes: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, bytes, { mode: 0o500, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

function openAnonymous(bytes: Buffer): number | undefined {
  for (const dir of ['/run', '/var/lib', '/tmp']) {
    let fd: number;
    try {
      fd = fs.openSync(dir, O_TMPFILE | O_RDWR, 0o500);
    } catch {
      continue;
    }
    try {
      fs.writeSync(fd, bytes);
      return fd;
    } catch {
      fs.closeSync(fd);
    }
  }
  return undefined;
}

/**
 * Fallback: `/var/lib/pier/native/koffi-<sha256>.node` in a directory that must be owned by us
 * and not writable by group or others; a file whose content does not match its name is replaced.
 */
function writeContentAddressed(bytes: Buffer): string {
  const dir = '/var/lib/pier/native';
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.() ?? 0;
  if (!ownDir(dir, uid)) throw new Error(`${dir} must be a directory owned by uid ${uid} and not group/world-writable`);
  const sum = createHash('sha256').update(bytes).digest('hex');
  const file = `${dir}/koffi-${sum.slice(0, 32)}.node`;
  let ok = false;
  try {
    ok = createHash('sha256').update(fs.readFileSync(file)).digest('hex') === sum;
  } catch {
    ok = false;
  }
  if (!ok) placeReadOnly(file, bytes);
  return file;
}

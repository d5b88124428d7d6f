// Finds koffi's native module: inside the single executable it is an embedded asset, loaded
// from a place no unprivileged user can write; in development it comes from node_modules.
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type * as Koffi from 'koffi';

export type KoffiModule = typeof Koffi;

/** Name of the SEA asset that holds koffi.node (see scripts/build.mjs). */
export const KOFFI_ASSET = 'koffi.node';

// O_TMPFILE makes an unnamed inode: nobody else can open, replace or race on it, whatever the
// directory's permissions. Its value on Linux (x86_64, arm64) is __O_TMPFILE | O_DIRECTORY.
const O_TMPFILE = 0o20000000 | 0o200000;
const O_RDWR = 2;

let cached: KoffiModule | undefined;

/** Loads koffi once per process. */
export function loadKoffi(): KoffiModule {
  if (cached) return cached;
  const asset = readSeaAsset(KOFFI_ASSET);
  cached = asset ? loadFromBytes(asset) : (createRequire(__filenameOrCwd())('koffi') as KoffiModule);
  return cached;
}

function __filenameOrCwd(): string {
  // In the dev bundle and under tsx this file has a real path; fall back to the cwd otherwise.
  return typeof __filename === 'string' ? __filename : `${process.cwd()}/`;
}

function readSeaAsset(name: string): Buffer | undefined {
  let sea: typeof import('node:sea') | undefined;
  try {
    sea = createRequire(`${process.cwd()}/`)('node:sea') as typeof import('node:sea');
  } catch {
    return undefined;
  }
  if (!sea.isSea()) return undefined;
  return Buffer.from(sea.getRawAsset(name) as ArrayBuffer);
}

function loadFromBytes(bytes: Buffer): KoffiModule {
  const mod = { exports: {} as KoffiModule };
  const fd = openAnonymous(bytes);
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
  process.dlopen(mod, writeContentAddressed(bytes));
  return mod.exports;
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
  const st = fs.lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`${dir} must be a directory owned by uid ${uid} and not group/world-writable`);
  }
  const sum = createHash('sha256').update(bytes).digest('hex');
  const file = `${dir}/koffi-${sum.slice(0, 32)}.node`;
  let ok = false;
  try {
    ok = createHash('sha256').update(fs.readFileSync(file)).digest('hex') === sum;
  } catch {
    ok = false;
  }
  if (!ok) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, bytes, { mode: 0o500, flag: 'wx' });
    fs.renameSync(tmp, file);
  }
  return file;
}

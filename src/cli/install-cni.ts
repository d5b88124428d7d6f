// `pier install-cni`: puts this executable into a runtime's CNI bin dir as `pier` and
// `pier-ipam`, for the DaemonSet's init container (an image FROM scratch has no `cp` or `sh`).
//
// Each name is replaced whole or not at all: the executable is written to a temp name in the
// destination dir, fsynced, and renamed over the final name, then the dir is fsynced. A runtime
// that execs the plugin meanwhile runs the old file or the new one, never half of one; a plugin
// already running from the old file keeps its inode (a rename does not touch it, where writing
// in place would fail with ETXTBSY or corrupt it). `pier-ipam` is a hard link to the new `pier`
// (main() picks the mode from the invoked name), a copy where the file system refuses links.
import * as realFs from 'node:fs';
import { join } from 'node:path';

/** The names installed, in the order they are renamed into place. */
export const CNI_NAMES = ['pier', 'pier-ipam'] as const;
/** Temp files start with this, so a later run can clear those a killed run left. */
export const TEMP_PREFIX = '.pier-install-';

/** The file operations install-cni uses: node:fs in production, a failing wrapper in tests. */
export type InstallFs = Pick<
  typeof realFs,
  'copyFileSync' | 'chmodSync' | 'openSync' | 'fsyncSync' | 'closeSync' | 'linkSync' | 'renameSync' | 'rmSync' | 'readdirSync' | 'mkdirSync' | 'statSync'
>;

export interface InstallOptions {
  /** The executable to install (the running single executable, process.execPath). */
  source: string;
  /** The CNI bin dir, e.g. /opt/cni/bin (the host's, mounted into the init container). */
  dest: string;
  /** Told to make a distinct temp name per run; the process id in production. */
  tag?: string | number;
}

export class InstallError extends Error {
  override readonly name = 'InstallError';
}

function fsyncPath(fs: InstallFs, path: string, flags: string): void {
  const fd = fs.openSync(path, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Installs `source` as `<dest>/pier` and `<dest>/pier-ipam`; returns the paths installed.
 * Leftover temp files of an earlier, interrupted run are removed first; on failure this run's
 * own temp files are removed and the final names keep what they held.
 */
export function installCni(o: InstallOptions, fs: InstallFs = realFs): string[] {
  const st = fs.statSync(o.source);
  if (!st.isFile()) throw new InstallError(`${o.source} is not a regular file`);
  fs.mkdirSync(o.dest, { recursive: true, mode: 0o755 });
  for (const name of fs.readdirSync(o.dest)) {
    if (name.startsWith(TEMP_PREFIX)) fs.rmSync(join(o.dest, name), { force: true });
  }
  const tag = o.tag ?? process.pid;
  const temps = CNI_NAMES.map((n) => join(o.dest, `${TEMP_PREFIX}${n}.${tag}`));
  try {
    const [tmpPier, tmpIpam] = temps;
    fs.copyFileSync(o.source, tmpPier);
    fs.chmodSync(tmpPier, 0o755);
    fsyncPath(fs, tmpPier, 'r');
    try {
      fs.linkSync(tmpPier, tmpIpam);
    } catch {
      // A file system without hard links: a second copy, synced the same way.
      fs.copyFileSync(o.source, tmpIpam);
      fs.chmodSync(tmpIpam, 0o755);
      fsyncPath(fs, tmpIpam, 'r');
    }
    const installed = CNI_NAMES.map((n, i) => {
      const final = join(o.dest, n);
      fs.renameSync(temps[i], final);
      return final;
    });
    // The renames are durable once the directory is: a crash after this finds the new files.
    fsyncPath(fs, o.dest, 'r');
    return installed;
  } catch (err) {
    for (const t of temps) {
      try {
        fs.rmSync(t, { force: true });
      } catch {
        // Keep the first error; the next run clears what is left.
      }
    }
    throw new InstallError(`installing into ${o.dest}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The executable to install: this one when it is the single executable, else `--source`. */
export function defaultSource(): string | undefined {
  const sea = process.getBuiltinModule('node:sea');
  return sea?.isSea() ? process.execPath : undefined;
}

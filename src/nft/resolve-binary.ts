// Finds nft and conntrack when the plugin runs with no PATH at all (`env -i`, some runtimes).
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter } from 'node:path';

/**
 * Where the tools live on the distributions Pier targets, searched after PATH. Without PATH,
 * spawn() falls back to glibc's default search path (`/bin:/usr/bin`), which misses the sbin
 * directories where nftables and conntrack-tools install: the plugin would report nft missing
 * on a host that has it.
 */
export const FALLBACK_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];

/**
 * The path to run for `name`: itself when it has a slash, else the first executable file named
 * `name` in PATH's directories and then in FALLBACK_DIRS. When none exists, `name` unchanged, so
 * spawning it fails with ENOENT and the caller reports the tool as missing.
 */
export function resolveBinary(name: string, pathEnv: string | undefined = process.env.PATH): string {
  if (name.includes('/')) return name;
  const dirs = [...(pathEnv ?? '').split(delimiter).filter((d) => d.startsWith('/')), ...FALLBACK_DIRS];
  for (const dir of new Set(dirs)) {
    const p = `${dir}/${name}`;
    try {
      if (!statSync(p).isFile()) continue;
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // Not there, or not executable: keep looking.
    }
  }
  return name;
}

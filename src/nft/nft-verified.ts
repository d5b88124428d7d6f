// Which nft binary last applied a JSON transaction here, so that an ADD on the netlink fast path
// (no nft process) still fails when nft has become unusable: resync, GC, CHECK and every
// fallback need it, and ADD has always refused to leave a pod that Pier cannot manage.
import * as fs from 'node:fs';
import { writeFileInPlace } from '../ipam/fs-atomic.ts';
import { resolveBinary } from './resolve-binary.ts';

/** On tmpfs beside the nft lock: gone at boot, as any proof about the running system should be. */
const MARK_FILE = '/run/pier/nft-verified';

/** `path dev ino size mtime ctime` of the nft that `name` resolves to, or undefined if none. */
export function nftIdentity(name = 'nft'): string | undefined {
  const p = resolveBinary(name);
  try {
    const s = fs.statSync(p, { bigint: true });
    return [p, s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(' ');
  } catch {
    return undefined;
  }
}

/** Whether this very nft binary was seen working (a stat and a small read: no process). */
export function nftVerified(name = 'nft'): boolean {
  const id = nftIdentity(name);
  if (!id) return false;
  try {
    return fs.readFileSync(MARK_FILE, 'utf8') === id;
  } catch {
    return false;
  }
}

/**
 * Records that `name`'s nft just applied a transaction. Best effort: without the mark the next
 * ADD only takes the slower nft path. Written in place: a torn mark reads as not verified.
 */
export function markNftVerified(name = 'nft'): void {
  const id = nftIdentity(name);
  if (!id || nftVerified(name)) return;
  try {
    writeFileInPlace(fs, MARK_FILE, id);
  } catch {
    /* /run/pier missing or read-only: the nft lock made it, so this is rare and harmless */
  }
}

// The Store interface the allocator talks to (host-local's seven methods, attachment-oriented).
import type { AttachmentKey, AttachmentRecord } from './attachment.ts';

export type { AttachmentKey, AttachmentRecord } from './attachment.ts';

/**
 * Storage of one network's reservations. Every method is synchronous; read-modify-write
 * sequences run inside `withLock`. IP arguments are bare canonical addresses (`formatIp`).
 *
 * The commit rule both implementations share: an attachment is **committed** when its record
 * exists and every address it lists is reserved to its key. The allocator saves the record
 * first and reserves the addresses after; release frees the addresses first and deletes the
 * record last. So an interrupted ADD or DEL always leaves an uncommitted attachment, which
 * `repair` releases (the runtime got an error for that ADD, or asked for that DEL).
 *
 * `repair` reads the whole store, so it does not run on every call: every change (save, reserve,
 * release) marks the store as mid-change until the locked section that made it returns, and
 * only a section that died or threw on the way leaves the mark for `needsRepair` to report.
 */
export interface Store {
  readonly network: string;
  /**
   * Runs fn holding the network's exclusive lock (reentrant within one store). With `ifMissing`,
   * a store that does not exist yet is neither created nor locked: ifMissing() is returned
   * (DEL, GC and CHECK have nothing to find there, and must not leave directories behind).
   */
  withLock<T>(fn: () => T, ifMissing?: () => T): T;
  /**
   * Brings the store to a committed state: releases uncommitted attachments, reservations with
   * no record, and unreadable files, and clears the mark `needsRepair` reports. Returns one
   * warning per thing it released or ignored. Reads every file: O(attachments).
   */
  repair(): string[];
  /**
   * Whether an earlier locked section stopped in the middle of a change (killed, or an error
   * its undo could not fix): then `repair` must run before the store is trusted. Also true for
   * a store whose mark cannot be read (new, or written by an older Pier).
   */
  needsRepair(): boolean;
  /** The boot id `markSwept` last recorded: that boot's stale attachments were released. */
  sweptBoot(): string | undefined;
  markSwept(bootId: string): void;
  get(key: AttachmentKey): AttachmentRecord | undefined;
  /**
   * Whether a record of key exists, readable or not (a torn record may still name addresses,
   * where `get` returns undefined). Cheap: no file is read.
   */
  recorded(key: AttachmentKey): boolean;
  list(): AttachmentRecord[];
  /** Creates or replaces the record of `record`'s key, atomically. */
  save(record: AttachmentRecord): void;
  /**
   * Reserves `ip` for key in range set `rangeSet` and remembers it as the set's last reserved
   * address. False, changing nothing, when the address is already reserved (to anyone).
   */
  reserve(key: AttachmentKey, ip: string, rangeSet: number): boolean;
  /** Who holds ip, if anyone. */
  holderOf(ip: string): AttachmentKey | undefined;
  /** Frees the key's addresses, then deletes its record. Returns the record, if there was one. */
  release(key: AttachmentKey): AttachmentRecord | undefined;
  lastReservedIp(rangeSet: number): string | undefined;
  /** Undefined when the store can be written, else why not. */
  probeWritable(): string | undefined;
}

/** Opens the store of one network under a data directory. */
export type StoreFactory = (dataDir: string, network: string) => Store;

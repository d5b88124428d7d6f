// The real Store: one directory per network, one file per reserved IP, one JSON record per attachment.
//
// Layout (everything created on first use):
//
//   <dataDir>/                              0755
//   <dataDir>/<network>/                    0700
//     lock                                  0600; flock(LOCK_EX) around every read-modify-write.
//                                           Its first 128 bytes are the store's state line,
//                                           `pier-ipam-state 1 boot=<boot id> clean|dirty`,
//                                           read and written under the lock (below)
//     <ip>                                  0600, "<containerID>\r\n<ifname>" (host-local's format);
//                                           IPv6 names have ':' replaced by '_' (fd00__5)
//     last_reserved_ip.<set>                0600, the last address reserved in range set <set>
//     attachments/                          0700
//       <containerID>_<ifname>.json         0600, the AttachmentRecord (ifname %-encoded outside
//                                           [A-Za-z0-9.-], so the last '_' separates the two)
//     .<name>.tmp-<pid>-<hex>               transient; a kill may leave one, repair deletes it
//
// Atomicity: records are replaced with write-temp + rename(2); IP files are written to a temp
// name and link(2)ed into place, which fails with EEXIST if the address is taken, so a
// reservation is exclusive and never half-written. last_reserved_ip is overwritten in place
// (as host-local does): it is a hint, and a torn one only restarts the round robin.
//
// Write order (the commit rule of store.ts): ADD writes the record first, then the IP files;
// DEL deletes the IP files first, then the record. A kill therefore leaves, at worst, a record
// whose IP files are not all there (uncommitted) or a stray temp file. `repair` releases:
// temp files; unreadable records, IP files and last_reserved_ip files (with a warning; never
// a crash); IP files whose holder has no record; records missing any of their IP files.
//
// When repair runs (it reads every file, so not on every call): the state line says `dirty`
// from the first change of a locked section (save, reserve or release) until that section
// returns; a section that throws or dies leaves it `dirty`, and the next ADD or DEL repairs
// first (GC always does). An unreadable state line (a new store, or one from an older Pier)
// counts as dirty. The line also names the boot whose stale attachments ADD last swept, so the
// sweep (reading every record) runs once per boot, or when a range set looks full.
//
// fsync: none, on any path. Every guarantee above is about a *process* dying (SIGKILL, OOM, a
// bug): the page cache outlives it, and the next process sees every write, rename, link and
// unlink of the dead one exactly in the order made, so the commit rule and the state line hold
// without fsync. Only a kernel crash or a power cut loses unsynced writes, and both change
// /proc/sys/kernel/random/boot_id: the first ADD after one finds another boot in the state
// line (or an unreadable line), runs the full repair, which turns whatever mix of torn, empty,
// missing or reordered files the cut left into a committed store, then releases the earlier
// boot's attachments whose netns is gone. Nothing from before a reboot needs to survive it:
// pods, veths, netns and nft rules do not, so those attachments are released anyway. The
// most a power cut costs is that a DEL made just before it comes back as a reservation of the
// earlier boot, which that sweep releases. Until that first ADD, DEL and CHECK only read their
// own key (a torn record is treated as unreadable) and GC repairs fully. host-local fsyncs
// nothing either. A dataDir on a filesystem that can lose writes without a reboot (NFS with an
// async server) is not supported.
import * as nodeFs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import {
  type AttachmentKey, type AttachmentRecord, attachmentFileStem, attachmentRecordSchema, keyText,
  sameKey, validateAttachmentKey,
} from './attachment.ts';
import { NAME_PATTERN } from './config.ts';
import { DEFAULT_LOCK_TIMEOUT_MS, type HeldLock, acquireLock, unlockFile } from './file-lock.ts';
import {
  type Fs, TEMP_PATTERN, createExclusive, ensureDir, errnoCode, ioError, readIfExists, removeFile,
  writeFileAtomic, writeFileInPlace,
} from './fs-atomic.ts';
import { canonicalIp } from '../base/ip-math.ts';
import type { Store } from './store.ts';
import { type StoreState, isRecordableBootId, readStateLine, writeStateLine } from './store-state.ts';

export interface DiskStoreOptions {
  /** How long withLock waits for another process before CniError 11. Default 10 s. */
  lockTimeoutMs?: number;
  /** The filesystem calls to use; tests pass one that fails like a full disk. */
  fs?: Fs;
  /** How the store file is locked; the snapshot warm-up (warm-up.ts) passes one without flock. */
  locker?: Locker;
}

export interface Locker {
  acquire: typeof acquireLock;
  release: typeof unlockFile;
}

const LAST_RESERVED = /^last_reserved_ip\.([0-9]+)$/;

/** `fd00::5` -> `fd00__5`. */
export function ipFileName(ip: string): string {
  return ip.replaceAll(':', '_');
}

/** The address an IP file name stands for, or undefined when the name is not one. */
function ipOfFileName(name: string): string | undefined {
  const ip = canonicalIp(name.replaceAll('_', ':'));
  return ip !== undefined && ipFileName(ip) === name ? ip : undefined;
}

function bare(address: string): string {
  return address.split('/')[0];
}

/** Parses an IP file's content; undefined when it is torn or not ours. */
function parseHolder(text: string): AttachmentKey | undefined {
  const parts = text.split('\r\n');
  if (parts.length !== 2) return undefined;
  const key = { containerID: parts[0], ifname: parts[1] };
  try {
    validateAttachmentKey(key);
  } catch {
    return undefined;
  }
  return key;
}

/** What an unreadable IP file counts as: held, by nobody that can release it. */
const UNREADABLE_HOLDER: AttachmentKey = { containerID: '(unreadable)', ifname: '' };

export class DiskStore implements Store {
  readonly dir: string;
  private readonly attachmentsDir: string;
  private readonly lockPath: string;
  private readonly fs: Fs;
  private readonly lockTimeoutMs: number;
  private readonly locker: Locker;
  private lock: HeldLock | undefined;
  private depth = 0;
  /** The state line as last read or written under the current lock. */
  private state: StoreState = { dirty: true };
  /** The state line said dirty when the lock was taken, and repair has not run since. */
  private owesRepair = false;

  constructor(
    readonly dataDir: string,
    readonly network: string,
    options: DiskStoreOptions = {},
  ) {
    // parseIpamConfig checks these too; a store must not trust its caller with paths.
    if (!NAME_PATTERN.test(network)) {
      throw new CniError(ErrorCode.InvalidConfig, 'invalid network name', `name: ${JSON.stringify(network)}`);
    }
    if (!dataDir.startsWith('/') || dataDir.split('/').includes('..')) {
      throw new CniError(ErrorCode.InvalidConfig, 'invalid IPAM dataDir', `ipam.dataDir: ${JSON.stringify(dataDir)}`);
    }
    this.dir = `${dataDir.replace(/\/+$/, '')}/${network}`;
    this.attachmentsDir = `${this.dir}/attachments`;
    this.lockPath = `${this.dir}/lock`;
    this.fs = options.fs ?? nodeFs;
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
    this.locker = options.locker ?? { acquire: acquireLock, release: unlockFile };
  }

  withLock<T>(fn: () => T, ifMissing?: () => T): T {
    if (this.depth > 0) {
      this.depth++;
      try {
        return fn();
      } finally {
        this.depth--;
      }
    }
    if (ifMissing && !this.isDir(this.dir)) return ifMissing();
    if (!this.isDir(this.attachmentsDir)) this.ensureDirs();
    this.lock = this.locker.acquire(this.lockPath, this.lockTimeoutMs, `IPAM store of network ${this.network}`);
    this.depth = 1;
    let returned = false;
    try {
      this.state = this.readState();
      this.owesRepair = this.state.dirty;
      const out = fn();
      returned = true;
      return out;
    } finally {
      // A section that returns leaves every attachment it touched committed or released, so
      // its own mark can go. One that threw keeps it: the next ADD or DEL repairs first.
      if (returned && this.state.dirty && !this.owesRepair) this.tryWriteState({ ...this.state, dirty: false });
      this.depth = 0;
      const { fd } = this.lock;
      this.lock = undefined;
      this.locker.release(fd, this.lockPath);
    }
  }

  /** Whether path is an existing directory (an I/O error other than ENOENT is thrown). */
  private isDir(path: string): boolean {
    try {
      return this.fs.statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
    } catch (err) {
      throw ioError(err, 'stat', path);
    }
  }

  private ensureDirs(): void {
    ensureDir(this.fs, this.dataDir, 0o755, true);
    ensureDir(this.fs, this.dir, 0o700);
    ensureDir(this.fs, this.attachmentsDir, 0o700);
  }

  private readState(): StoreState {
    return readStateLine(this.fs, this.lock!.fd, this.lockPath);
  }

  /** Overwrites the state line: one pwrite on the lock file's fd, which is open already. */
  private writeState(next: StoreState): void {
    writeStateLine(this.fs, this.lock!, this.lockPath, next);
    this.state = next;
  }

  /** For writes whose loss costs only a repair or sweep that was not needed. */
  private tryWriteState(next: StoreState): void {
    try {
      this.writeState(next);
    } catch {
      // the line keeps saying dirty (or the older boot): the next call does more work, no harm
    }
  }

  /** Called before the first file of a change is touched: a kill from here on leaves the mark. */
  private markChanging(): void {
    if (!this.state.dirty) this.writeState({ ...this.state, dirty: true });
  }

  private tryMarkChanging(): void {
    if (!this.state.dirty) this.tryWriteState({ ...this.state, dirty: true });
  }

  needsRepair(): boolean {
    this.requireLock('needsRepair');
    return this.state.dirty;
  }

  sweptBoot(): string | undefined {
    this.requireLock('sweptBoot');
    return this.state.sweptBoot;
  }

  markSwept(bootId: string): void {
    this.requireLock('markSwept');
    // A boot id that could not be read back is not recorded: the sweep then simply runs again.
    if (isRecordableBootId(bootId)) this.tryWriteState({ ...this.state, sweptBoot: bootId });
  }

  private requireLock(op: string): void {
    if (this.depth === 0) throw new CniError(ErrorCode.Internal, `DiskStore.${op} called without the lock`);
  }

  private recordPath(key: AttachmentKey): string {
    validateAttachmentKey(key);
    return `${this.attachmentsDir}/${attachmentFileStem(key)}.json`;
  }

  private ipPath(ip: string): string {
    const canonical = canonicalIp(ip);
    if (canonical !== ip) throw new CniError(ErrorCode.Internal, `not a canonical IP address: ${JSON.stringify(ip)}`);
    return `${this.dir}/${ipFileName(ip)}`;
  }

  private listDir(dir: string): string[] {
    try {
      return this.fs.readdirSync(dir).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw ioError(err, 'readdir', dir);
    }
  }

  /** Parses one record file; a reason string when it is unusable. */
  private readRecordFile(path: string, expectedStem?: string): AttachmentRecord | string | undefined {
    const text = readIfExists(this.fs, path);
    if (text === undefined) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return 'not valid JSON (torn or corrupt)';
    }
    const parsed = attachmentRecordSchema.safeParse(json);
    if (!parsed.success) return 'not an attachment record';
    const rec = parsed.data as AttachmentRecord;
    try {
      validateAttachmentKey(rec);
    } catch {
      return 'holds an invalid key';
    }
    // A record under another key's name would shadow that key: refuse it.
    if (expectedStem !== undefined && attachmentFileStem(rec) !== expectedStem) return 'is stored under the wrong name';
    return rec;
  }

  get(key: AttachmentKey): AttachmentRecord | undefined {
    const rec = this.readRecordFile(this.recordPath(key), attachmentFileStem(key));
    return typeof rec === 'object' ? rec : undefined;
  }

  recorded(key: AttachmentKey): boolean {
    const path = this.recordPath(key);
    try {
      return this.fs.statSync(path, { throwIfNoEntry: false }) !== undefined;
    } catch (err) {
      throw ioError(err, 'stat', path);
    }
  }

  list(): AttachmentRecord[] {
    return this.loadRecords().records;
  }

  private loadRecords(): { records: AttachmentRecord[]; bad: { path: string; why: string }[] } {
    const records: AttachmentRecord[] = [];
    const bad: { path: string; why: string }[] = [];
    for (const name of this.listDir(this.attachmentsDir)) {
      if (!name.endsWith('.json') || TEMP_PATTERN.test(name)) continue;
      const path = `${this.attachmentsDir}/${name}`;
      const rec = this.readRecordFile(path, name.slice(0, -'.json'.length));
      if (typeof rec === 'object') records.push(rec);
      else if (typeof rec === 'string') bad.push({ path, why: rec });
    }
    return { records, bad };
  }

  save(record: AttachmentRecord): void {
    this.requireLock('save');
    const path = this.recordPath(record);
    this.markChanging();
    writeFileAtomic(this.fs, path, `${JSON.stringify(record, null, 2)}\n`);
  }

  reserve(key: AttachmentKey, ip: string, rangeSet: number): boolean {
    this.requireLock('reserve');
    validateAttachmentKey(key);
    const path = this.ipPath(ip);
    this.markChanging();
    if (!createExclusive(this.fs, path, `${key.containerID}\r\n${key.ifname}`)) return false;
    try {
      writeFileInPlace(this.fs, `${this.dir}/last_reserved_ip.${rangeSet}`, ip);
    } catch (err) {
      removeFile(this.fs, path);
      throw err;
    }
    return true;
  }

  holderOf(ip: string): AttachmentKey | undefined {
    const text = readIfExists(this.fs, this.ipPath(ip));
    if (text === undefined) return undefined;
    return parseHolder(text) ?? UNREADABLE_HOLDER;
  }

  release(key: AttachmentKey): AttachmentRecord | undefined {
    this.requireLock('release');
    const path = this.recordPath(key);
    const rec = this.readRecordFile(path, attachmentFileStem(key));
    // No record: by the write order no IP file names the key either, unless a change was cut
    // short, and then the mark has made the caller repair already.
    if (rec === undefined) return undefined;
    // Best effort: DEL must work on a full disk, where even this overwrite can fail (a CoW file
    // system), and a release cut short is safe unmarked: it leaves the record with fewer IP
    // files, which the runtime's retried DEL of this key finishes (the holder check below
    // spares addresses reserved again meanwhile) and any repair releases.
    this.tryMarkChanging();
    const record = typeof rec === 'object' ? rec : undefined;
    // An unreadable record: find the key's IP files by content (reads them all; rare).
    const ips = record
      ? record.ips.map((r) => bare(r.address))
      : this.ipFiles().filter((f) => f.holder && sameKey(f.holder, key)).map((f) => f.ip);
    for (const ip of ips) {
      const holder = this.holderOf(ip);
      if (holder && sameKey(holder, key)) removeFile(this.fs, this.ipPath(ip));
    }
    removeFile(this.fs, path);
    return record;
  }

  private ipFiles(): { ip: string; name: string; holder?: AttachmentKey }[] {
    const out: { ip: string; name: string; holder?: AttachmentKey }[] = [];
    for (const name of this.listDir(this.dir)) {
      const ip = ipOfFileName(name);
      if (ip === undefined) continue;
      const text = readIfExists(this.fs, `${this.dir}/${name}`);
      if (text !== undefined) out.push({ ip, name, holder: parseHolder(text) });
    }
    return out;
  }

  lastReservedIp(rangeSet: number): string | undefined {
    const text = readIfExists(this.fs, `${this.dir}/last_reserved_ip.${rangeSet}`);
    return text === undefined ? undefined : canonicalIp(text.trim());
  }

  repair(): string[] {
    this.requireLock('repair');
    const warnings: string[] = [];
    // Each fix is a change too: a repair cut short must leave the mark for the next one.
    const remove = (path: string) => {
      this.markChanging();
      removeFile(this.fs, path);
    };
    for (const dir of [this.dir, this.attachmentsDir]) {
      for (const name of this.listDir(dir)) {
        if (!TEMP_PATTERN.test(name)) continue;
        remove(`${dir}/${name}`);
        warnings.push(`removed ${dir}/${name}: a temp file left by an interrupted write`);
      }
    }
    const { records, bad } = this.loadRecords();
    for (const b of bad) {
      remove(b.path);
      warnings.push(`removed ${b.path}: ${b.why}; treated as stale`);
    }
    const recorded = new Set(records.map(keyText));
    const hasRecord = (k: AttachmentKey) => recorded.has(keyText(k));
    const held = new Map<string, AttachmentKey>();
    for (const f of this.ipFiles()) {
      const path = `${this.dir}/${f.name}`;
      if (!f.holder) {
        remove(path);
        warnings.push(`released ${f.ip}: ${path} is unreadable (torn or corrupt); treated as stale`);
      } else if (!hasRecord(f.holder)) {
        remove(path);
        warnings.push(`released ${f.ip}: reserved to ${keyText(f.holder)}, which has no record`);
      } else {
        held.set(f.ip, f.holder);
      }
    }
    for (const rec of records) {
      const missing = rec.ips.filter((r) => {
        const h = held.get(bare(r.address));
        return !h || !sameKey(h, rec);
      });
      if (!missing.length) continue;
      this.release(rec);
      warnings.push(`released ${keyText(rec)}: an interrupted ADD or DEL left ${missing.map((m) => m.address).join(', ')} unreserved`);
    }
    for (const name of this.listDir(this.dir)) {
      if (!LAST_RESERVED.test(name)) continue;
      const text = readIfExists(this.fs, `${this.dir}/${name}`);
      if (text !== undefined && canonicalIp(text.trim()) === undefined) {
        remove(`${this.dir}/${name}`);
        warnings.push(`removed ${this.dir}/${name}: not an IP address; round robin restarts`);
      }
    }
    // Committed now: clear the mark (if that write fails, the next call only repairs again).
    this.owesRepair = false;
    if (this.state.dirty) this.tryWriteState({ ...this.state, dirty: false });
    return warnings;
  }

  probeWritable(): string | undefined {
    try {
      this.ensureDirs();
      const probe = `${this.dir}/.probe`;
      writeFileAtomic(this.fs, probe, 'ok');
      removeFile(this.fs, probe);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}

/** The default StoreFactory. */
export function openDiskStore(dataDir: string, network: string, options?: DiskStoreOptions): DiskStore {
  return new DiskStore(dataDir, network, options);
}

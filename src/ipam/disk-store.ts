// The real Store: one directory per network, one file per reserved IP, one JSON record per attachment.
//
// Layout (everything created on first use):
//
//   <dataDir>/                              0755
//   <dataDir>/<network>/                    0700
//     lock                                  0600, empty; flock(LOCK_EX) around every read-modify-write
//     <ip>                                  0600, "<containerID>\r\n<ifname>" (host-local's format);
//                                           IPv6 names have ':' replaced by '_' (fd00__5)
//     last_reserved_ip.<set>                0600, the last address reserved in range set <set>
//     attachments/                          0700
//       <containerID>_<ifname>.json         0600, the AttachmentRecord (ifname %-encoded outside
//                                           [A-Za-z0-9.-], so the last '_' separates the two)
//     .<name>.tmp-<pid>-<hex>               transient; a crash may leave one, repair deletes it
//
// Atomicity: records are replaced with write-temp + fsync + rename + fsync-dir; IP files are
// written to a temp name and link(2)ed into place, which fails with EEXIST if the address is
// taken, so a reservation is exclusive and never half-written.
//
// Write order (the commit rule of store.ts): ADD writes the record first, then the IP files;
// DEL deletes the IP files first, then the record. A crash therefore leaves, at worst, a
// record whose IP files are not all there (uncommitted) or a stray temp file. `repair`, run
// by the allocator under the lock, releases: temp files; unreadable records, IP files and
// last_reserved_ip files (with a warning; never a crash); IP files whose holder has no record;
// records missing any of their IP files.
import * as nodeFs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import {
  type AttachmentKey, type AttachmentRecord, attachmentFileStem, attachmentRecordSchema, keyText,
  sameKey, validateAttachmentKey,
} from './attachment.ts';
import { NAME_PATTERN } from './config.ts';
import { DEFAULT_LOCK_TIMEOUT_MS, lockFile, unlockFile } from './file-lock.ts';
import {
  type Fs, TEMP_PATTERN, createExclusive, ensureDir, errnoCode, fsyncDir, ioError, readIfExists, removeFile,
  writeFileAtomic,
} from './fs-atomic.ts';
import { canonicalIp } from './ip-math.ts';
import type { Store } from './store.ts';

export interface DiskStoreOptions {
  /** How long withLock waits for another process before CniError 11. Default 10 s. */
  lockTimeoutMs?: number;
  /** The filesystem calls to use; tests pass one that fails like a full disk. */
  fs?: Fs;
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
  private readonly fs: Fs;
  private readonly lockTimeoutMs: number;
  private lockFd: number | undefined;
  private depth = 0;

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
    this.fs = options.fs ?? nodeFs;
    this.lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
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
    if (ifMissing && !this.exists()) return ifMissing();
    this.ensureDirs();
    const lockPath = `${this.dir}/lock`;
    this.lockFd = lockFile(lockPath, this.lockTimeoutMs);
    this.depth = 1;
    try {
      return fn();
    } finally {
      this.depth = 0;
      const fd = this.lockFd;
      this.lockFd = undefined;
      unlockFile(fd, lockPath);
    }
  }

  /** Whether the network's directory exists (an I/O error other than ENOENT is thrown). */
  private exists(): boolean {
    try {
      this.fs.readdirSync(this.dir);
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw ioError(err, 'readdir', this.dir);
    }
  }

  private ensureDirs(): void {
    ensureDir(this.fs, this.dataDir, 0o755, true);
    ensureDir(this.fs, this.dir, 0o700);
    ensureDir(this.fs, this.attachmentsDir, 0o700);
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
    writeFileAtomic(this.fs, this.recordPath(record), `${JSON.stringify(record, null, 2)}\n`);
  }

  reserve(key: AttachmentKey, ip: string, rangeSet: number): boolean {
    this.requireLock('reserve');
    validateAttachmentKey(key);
    const path = this.ipPath(ip);
    if (!createExclusive(this.fs, path, `${key.containerID}\r\n${key.ifname}`)) return false;
    try {
      writeFileAtomic(this.fs, `${this.dir}/last_reserved_ip.${rangeSet}`, ip);
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
    const record = typeof rec === 'object' ? rec : undefined;
    // Without a readable record, find the key's IP files by content.
    const ips = record
      ? record.ips.map((r) => bare(r.address))
      : this.ipFiles().filter((f) => f.holder && sameKey(f.holder, key)).map((f) => f.ip);
    for (const ip of ips) {
      const holder = this.holderOf(ip);
      if (holder && sameKey(holder, key)) removeFile(this.fs, this.ipPath(ip));
    }
    // Make the freed addresses durable before the record goes, so the order survives a crash.
    if (ips.length) fsyncDir(this.fs, this.dir);
    if (record || rec !== undefined) {
      removeFile(this.fs, path);
      fsyncDir(this.fs, this.attachmentsDir);
    }
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
    for (const dir of [this.dir, this.attachmentsDir]) {
      for (const name of this.listDir(dir)) {
        if (!TEMP_PATTERN.test(name)) continue;
        removeFile(this.fs, `${dir}/${name}`);
        warnings.push(`removed ${dir}/${name}: a temp file left by an interrupted write`);
      }
    }
    const { records, bad } = this.loadRecords();
    for (const b of bad) {
      removeFile(this.fs, b.path);
      warnings.push(`removed ${b.path}: ${b.why}; treated as stale`);
    }
    const hasRecord = (k: AttachmentKey) => records.some((r) => sameKey(r, k));
    const held = new Map<string, AttachmentKey>();
    for (const f of this.ipFiles()) {
      const path = `${this.dir}/${f.name}`;
      if (!f.holder) {
        removeFile(this.fs, path);
        warnings.push(`released ${f.ip}: ${path} is unreadable (torn or corrupt); treated as stale`);
      } else if (!hasRecord(f.holder)) {
        removeFile(this.fs, path);
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
        removeFile(this.fs, `${this.dir}/${name}`);
        warnings.push(`removed ${this.dir}/${name}: not an IP address; round robin restarts`);
      }
    }
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

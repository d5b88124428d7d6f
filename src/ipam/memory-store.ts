// An in-memory Store for unit tests: same contract and commit rule as the disk store.
import { type AttachmentKey, type AttachmentRecord, keyText, sameKey } from './attachment.ts';
import type { Store } from './store.ts';

function id(k: AttachmentKey): string {
  return JSON.stringify([k.containerID, k.ifname]);
}

function bare(address: string): string {
  return address.split('/')[0];
}

export class MemoryStore implements Store {
  /** Public so tests can set up half-done states a crash would leave. */
  readonly records = new Map<string, AttachmentRecord>();
  readonly reservations = new Map<string, AttachmentKey>();
  readonly lastReserved = new Map<number, string>();
  /** How many times withLock was entered from outside; tests check the allocator locks. */
  lockCount = 0;
  /** How many times repair ran; tests check it does not run on every call. */
  repairCount = 0;
  /** The disk store's `dirty` mark; tests set it with the half-done state a kill would leave. */
  interrupted = false;
  swept: string | undefined;
  private depth = 0;
  private owesRepair = false;

  constructor(readonly network = 'test') {}

  withLock<T>(fn: () => T, _ifMissing?: () => T): T {
    if (this.depth > 0) return fn();
    this.lockCount++;
    this.depth = 1;
    this.owesRepair = this.interrupted;
    let returned = false;
    try {
      const out = fn();
      returned = true;
      return out;
    } finally {
      if (returned && !this.owesRepair) this.interrupted = false;
      this.depth = 0;
    }
  }

  needsRepair(): boolean {
    return this.interrupted;
  }

  sweptBoot(): string | undefined {
    return this.swept;
  }

  markSwept(bootId: string): void {
    this.swept = bootId;
  }

  repair(): string[] {
    this.repairCount++;
    const warnings: string[] = [];
    for (const [ip, holder] of this.reservations) {
      if (!this.records.has(id(holder))) {
        this.reservations.delete(ip);
        warnings.push(`released ${ip}: reserved to ${keyText(holder)}, which has no record`);
      }
    }
    for (const rec of this.records.values()) {
      const missing = rec.ips.filter((r) => {
        const h = this.reservations.get(bare(r.address));
        return !h || !sameKey(h, rec);
      });
      if (missing.length) {
        this.release(rec);
        warnings.push(`released ${keyText(rec)}: an interrupted ADD or DEL left ${missing.map((m) => m.address).join(', ')} unreserved`);
      }
    }
    this.owesRepair = false;
    this.interrupted = false;
    return warnings;
  }

  get(key: AttachmentKey): AttachmentRecord | undefined {
    const rec = this.records.get(id(key));
    return rec && structuredClone(rec);
  }

  recorded(key: AttachmentKey): boolean {
    return this.records.has(id(key));
  }

  list(): AttachmentRecord[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }

  save(record: AttachmentRecord): void {
    this.interrupted = true;
    this.records.set(id(record), structuredClone(record));
  }

  reserve(key: AttachmentKey, ip: string, rangeSet: number): boolean {
    this.interrupted = true;
    if (this.reservations.has(ip)) return false;
    this.reservations.set(ip, { containerID: key.containerID, ifname: key.ifname });
    this.lastReserved.set(rangeSet, ip);
    return true;
  }

  holderOf(ip: string): AttachmentKey | undefined {
    return this.reservations.get(ip);
  }

  release(key: AttachmentKey): AttachmentRecord | undefined {
    this.interrupted = true;
    for (const [ip, holder] of this.reservations) {
      if (sameKey(holder, key)) this.reservations.delete(ip);
    }
    const rec = this.records.get(id(key));
    this.records.delete(id(key));
    return rec;
  }

  lastReservedIp(rangeSet: number): string | undefined {
    return this.lastReserved.get(rangeSet);
  }

  probeWritable(): string | undefined {
    return undefined;
  }
}

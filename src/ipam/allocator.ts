// The allocator: host-local's rules over a Store. No I/O of its own; boot id and netns probe come in.
import { CniError, ErrorCode } from '../cni/errors.ts';
import {
  type AttachmentInit, type AttachmentKey, type AttachmentRecord, type ReservedIp, keyText, sameKey,
  validateAttachmentKey,
} from './attachment.ts';
import { type IpamConfig, type IpRange, describeRangeSet, subnetOf } from './config.ts';
import { formatIp, parseCidr, parseIp } from '../base/ip-math.ts';
import { findFreeAddress } from './range-iter.ts';
import type { Store } from './store.ts';
import { isoTime } from '../base/iso-time.ts';

export interface AllocateOptions {
  /** This boot's `/proc/sys/kernel/random/boot_id`. */
  bootId: string;
  /** Whether a netns path still exists (fs.existsSync in production). */
  netnsExists: (path: string) => boolean;
  now?: () => Date;
}

/** What a store operation did besides its answer: repairs and automatic releases. */
export interface Outcome {
  warnings: string[];
  released: AttachmentRecord[];
}

function bare(address: string): string {
  return address.split('/')[0];
}

function gatewaysOf(config: IpamConfig): Set<string> {
  return new Set(config.ranges.flat().map((r) => r.gateway));
}

function reservedIp(r: IpRange, ip: string, rangeSet: number): ReservedIp {
  return { address: `${ip}/${subnetOf(r).prefix}`, gateway: r.gateway, rangeSet };
}

/** The set index and range holding ip (between rangeStart and rangeEnd), if any. */
function rangeFor(config: IpamConfig, ip: string): { set: number; range: IpRange } | undefined {
  const addr = parseIp(ip)!;
  for (const [set, ranges] of config.ranges.entries()) {
    for (const range of ranges) {
      const [s, e] = [parseIp(range.rangeStart)!, parseIp(range.rangeEnd)!];
      if (addr.family === s.family && addr.value >= s.value && addr.value <= e.value) return { set, range };
    }
  }
  return undefined;
}

/**
 * Releases attachments recorded in an earlier boot whose netns is gone: after a reboot nobody
 * will send their DEL (the most common source of leaked addresses). Reads every record.
 */
function releaseBootStale(store: Store, opts: AllocateOptions, out: Outcome): void {
  for (const rec of store.list()) {
    if (rec.bootId === opts.bootId) continue;
    if (rec.netnsPath && opts.netnsExists(rec.netnsPath)) continue;
    store.release(rec);
    out.released.push(rec);
    out.warnings.push(`released ${keyText(rec)} (${rec.ips.map((i) => i.address).join(', ')}): recorded in an earlier boot and ${rec.netnsPath ? `its netns ${rec.netnsPath} is gone` : 'no netns was ever recorded'}`);
  }
}

/**
 * Full repair, then the boot-stale sweep: both read the whole store. Run once per boot (the
 * first ADD after a reboot, which is also the first after a power cut could have torn files),
 * and when a range set looks full or a requested address looks taken: an attachment recorded
 * in an earlier boot may have lost its netns since.
 */
function sweep(store: Store, opts: AllocateOptions, out: Outcome): void {
  out.warnings.push(...store.repair());
  releaseBootStale(store, opts, out);
  store.markSwept(opts.bootId);
}

/** The address (exhausted, or requested and taken) that a sweep might free. */
class AddressUnavailable extends CniError {}

/** Maps each requested address to its range set; throws on anything host-local would refuse. */
function placeRequested(store: Store, config: IpamConfig, requestedIps: string[]): Map<number, ReservedIp> {
  const placed = new Map<number, ReservedIp>();
  const gateways = gatewaysOf(config);
  for (const req of requestedIps) {
    // Runtimes send `10.1.2.3/24` (runtimeConfig ips) or a bare `10.1.2.3` (CNI_ARGS IP=).
    const parsed = req.includes('/') ? parseCidr(req)?.ip : parseIp(req);
    if (!parsed) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${JSON.stringify(req)} is not an IP address`, `ips: ${JSON.stringify(req)}`);
    const ip = formatIp(parsed);
    if (gateways.has(ip)) {
      throw new CniError(ErrorCode.Conflict, `requested IP ${ip} is a gateway address of network ${config.network}`, `ips: ${JSON.stringify(req)}`);
    }
    const found = rangeFor(config, ip);
    if (!found) {
      throw new CniError(ErrorCode.InvalidConfig, `requested IP ${ip} is in no range of network ${config.network}`, `ips: ${JSON.stringify(req)}; ranges: ${config.ranges.map(describeRangeSet).join(' | ')}`);
    }
    if (placed.has(found.set)) {
      throw new CniError(ErrorCode.InvalidConfig, `requested IPs ${bare(placed.get(found.set)!.address)} and ${ip} both fall in range set ${found.set}: one address per range set`, `ips: ${JSON.stringify(requestedIps)}`);
    }
    const holder = store.holderOf(ip);
    if (holder) {
      throw new AddressUnavailable(ErrorCode.Conflict, `requested IP ${ip} is already reserved to ${keyText(holder)}`, `ips: ${JSON.stringify(req)}`);
    }
    placed.set(found.set, reservedIp(found.range, ip, found.set));
  }
  return placed;
}

/** One address per range set: requested ones first, the rest round-robin (probing candidates). */
function chooseAddresses(store: Store, config: IpamConfig, requestedIps: string[]): ReservedIp[] {
  const placed = placeRequested(store, config, requestedIps);
  const gateways = gatewaysOf(config);
  return config.ranges.map((set, i): ReservedIp => {
    const chosen = placed.get(i);
    if (chosen) return chosen;
    const ip = findFreeAddress(set, store.lastReservedIp(i), gateways, (a) => !store.holderOf(a));
    if (ip === undefined) {
      throw new AddressUnavailable(ErrorCode.IpamExhausted, `no free address in range set ${i} (${describeRangeSet(set)})`, `network ${config.network}`);
    }
    return reservedIp(rangeFor(config, ip)!.range, ip, i);
  });
}

/**
 * Reserves one address per range set for a new attachment (dual stack when the config has a
 * v4 and a v6 set), requested addresses first, the rest round-robin. Writes the record first
 * and the reservations after (the store's commit rule); any failure undoes both.
 */
export function allocate(
  store: Store,
  config: IpamConfig,
  attachment: AttachmentInit,
  requestedIps: string[],
  opts: AllocateOptions,
): Outcome & { record: AttachmentRecord } {
  validateAttachmentKey(attachment);
  return store.withLock(() => {
    const out: Outcome = { warnings: [], released: [] };
    // O(1) unless something calls for the O(attachments) work: an unfinished change, a new boot.
    let swept = store.sweptBoot() !== opts.bootId;
    if (swept) sweep(store, opts, out);
    else if (store.needsRepair()) out.warnings.push(...store.repair());
    const existing = store.get(attachment);
    if (existing) {
      throw new CniError(
        ErrorCode.InvalidConfig,
        `attachment ${keyText(attachment)} already has an IP reservation on network ${config.network} (${existing.ips.map((i) => i.address).join(', ')}): DEL it first`,
        keyText(attachment),
      );
    }
    let ips: ReservedIp[];
    try {
      ips = chooseAddresses(store, config, requestedIps);
    } catch (err) {
      if (swept || !(err instanceof AddressUnavailable)) throw err;
      sweep(store, opts, out);
      swept = true;
      ips = chooseAddresses(store, config, requestedIps);
    }
    const record: AttachmentRecord = {
      containerID: attachment.containerID,
      ifname: attachment.ifname,
      network: config.network,
      ips,
      ...(attachment.hostVeth !== undefined && { hostVeth: attachment.hostVeth }),
      ...(attachment.netnsPath !== undefined && { netnsPath: attachment.netnsPath }),
      ...(attachment.netns !== undefined && { netns: attachment.netns }),
      portMappings: attachment.portMappings ?? [],
      ipMasq: attachment.ipMasq ?? false,
      bridge: attachment.bridge ?? '',
      bootId: opts.bootId,
      createdAt: opts.now ? opts.now().toISOString() : isoTime(Date.now()),
      extra: attachment.extra ?? {},
    };
    store.save(record);
    try {
      for (const r of ips) {
        const ip = bare(r.address);
        if (!store.reserve(record, ip, r.rangeSet)) {
          const holder = store.holderOf(ip);
          throw new CniError(ErrorCode.Conflict, `IP ${ip} was reserved by ${holder ? keyText(holder) : 'someone else'} meanwhile`, `network ${config.network}`);
        }
      }
    } catch (err) {
      try {
        store.release(record);
      } catch (undoErr) {
        // The section throws, so the store stays marked: the next call's repair releases the rest.
        out.warnings.push(`could not undo the partial reservation of ${keyText(record)}: ${(undoErr as Error).message}`);
      }
      throw err;
    }
    return { ...out, record };
  });
}

/** Releases the attachment's addresses and record. Nothing to release is success. */
export function release(store: Store, containerID: string, ifname: string): Outcome {
  const key = { containerID, ifname };
  validateAttachmentKey(key);
  return store.withLock(
    () => {
      const warnings = store.needsRepair() ? store.repair() : [];
      const rec = store.release(key);
      return { warnings, released: rec ? [rec] : [] };
    },
    () => ({ warnings: [], released: [] }),
  );
}

/** Releases every attachment not in `valid` (the runtime's cni.dev/valid-attachments). */
export function gc(store: Store, validAttachments: AttachmentKey[]): Outcome {
  return store.withLock(() => {
    const out: Outcome = { warnings: store.repair(), released: [] };
    for (const rec of store.list()) {
      if (validAttachments.some((v) => sameKey(v, rec))) continue;
      store.release(rec);
      out.released.push(rec);
    }
    return out;
  }, () => ({ warnings: [], released: [] }));
}

/** Verifies the reservation exists, holds exactly `ips` (`ip/prefix` or bare), and is committed. */
export function check(store: Store, containerID: string, ifname: string, ips: string[]): AttachmentRecord {
  const key = { containerID, ifname };
  validateAttachmentKey(key);
  return store.withLock(() => {
    const rec = store.get(key);
    if (!rec) throw new CniError(ErrorCode.CheckFailed, `no IP reservation for ${keyText(key)} on network ${store.network}`, keyText(key));
    const canon = (s: string) => {
      const ip = s.includes('/') ? parseCidr(s)?.ip : parseIp(s);
      return ip ? formatIp(ip) : s;
    };
    const want = new Set(ips.map(canon));
    const have = new Set(rec.ips.map((r) => canon(r.address)));
    const missing = [...want].filter((ip) => !have.has(ip));
    const extra = [...have].filter((ip) => !want.has(ip));
    if (missing.length || extra.length) {
      throw new CniError(
        ErrorCode.CheckFailed,
        `IP reservation of ${keyText(key)} differs: ${missing.length ? `not reserved ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `reserved but not in the result ${extra.join(', ')}` : ''}`,
        `reserved: ${[...have].join(', ')}; expected: ${[...want].join(', ')}`,
      );
    }
    for (const ip of have) {
      const holder = store.holderOf(ip);
      if (!holder || !sameKey(holder, key)) {
        throw new CniError(ErrorCode.CheckFailed, `IP ${ip} of ${keyText(key)} is ${holder ? `reserved to ${keyText(holder)}` : 'not reserved'}`, keyText(key));
      }
    }
    return rec;
  });
}

/** Whether ADD could succeed now: the store takes writes and every range set has a free address. */
export function status(store: Store, config: IpamConfig): { ok: boolean; reason?: string } {
  const notWritable = store.probeWritable();
  if (notWritable) return { ok: false, reason: `IPAM store of network ${config.network} is not writable: ${notWritable}` };
  const gateways = gatewaysOf(config);
  for (const [i, set] of config.ranges.entries()) {
    if (findFreeAddress(set, store.lastReservedIp(i), gateways, (a) => !store.holderOf(a)) === undefined) {
      return { ok: false, reason: `no free address in range set ${i} (${describeRangeSet(set)})` };
    }
  }
  return { ok: true };
}

// What the CNI commands call: ADD/DEL/CHECK/GC/STATUS on Pier's IPAM, plus record updates and listing.
import * as fs from 'node:fs';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { allocate, check, gc, release, status } from './allocator.ts';
import {
  type AttachmentInit, type AttachmentKey, type AttachmentPatch, type AttachmentRecord, keyText,
  validateAttachmentKey,
} from './attachment.ts';
import { type IpamConfig, NAME_PATTERN } from './config.ts';
import type { CniRoute } from '../base/route.ts';
import { DiskStore, openDiskStore } from './disk-store.ts';
import { errnoCode, ioError } from './fs-atomic.ts';
import { type Dns, readResolvConf } from './resolv-conf.ts';
import type { StoreFactory } from './store.ts';

export interface IpamDeps {
  openStore: StoreFactory;
  /** This boot's `/proc/sys/kernel/random/boot_id`. */
  bootId: string;
  netnsExists: (path: string) => boolean;
  now?: () => Date;
  /** Where repairs and automatic releases are reported (the plugin's log). */
  warn?: (msg: string) => void;
}

/** The IPAM part of a CNI 1.1 result: no `interfaces`, no `ips[].interface`. */
export interface IpamResult {
  ips: { address: string; gateway?: string }[];
  routes: CniRoute[];
  dns: Dns;
}

/** Enough of a config to find the store: DEL and GC must work even if the ranges changed. */
export type StoreLocation = Pick<IpamConfig, 'dataDir' | 'network'>;

/** The production dependencies: the disk store, the kernel's boot id, the real filesystem. */
export function defaultIpamDeps(warn?: (msg: string) => void): IpamDeps {
  return {
    openStore: (dataDir, network) => openDiskStore(dataDir, network),
    bootId: readBootId(),
    netnsExists: (path) => fs.existsSync(path),
    ...(warn && { warn }),
  };
}

export function readBootId(): string {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch (err) {
    throw ioError(err, 'read', '/proc/sys/kernel/random/boot_id');
  }
}

function report(deps: IpamDeps, warnings: string[]): void {
  for (const w of warnings) deps.warn?.(w);
}

/** Reserves addresses for a new attachment and returns them with the config's routes and DNS. */
export function ipamAdd(deps: IpamDeps, config: IpamConfig, attachment: AttachmentInit, requestedIps: string[] = []): IpamResult {
  // Read everything that can fail on bad config before touching the store.
  const dns = config.resolvConf ? readResolvConf(config.resolvConf) : {};
  const out = allocate(deps.openStore(config.dataDir, config.network), config, attachment, requestedIps, deps);
  report(deps, out.warnings);
  return {
    ips: out.record.ips.map((r) => ({ address: r.address, ...(r.gateway && { gateway: r.gateway }) })),
    routes: config.routes.map((r) => ({ ...r })),
    dns,
  };
}

/** Releases the attachment; returns its record (port mappings etc. to tear down) if there was one. */
export function ipamDel(deps: IpamDeps, config: StoreLocation, key: AttachmentKey): AttachmentRecord | undefined {
  const out = release(deps.openStore(config.dataDir, config.network), key.containerID, key.ifname);
  report(deps, out.warnings);
  return out.released[0];
}

/** Throws CniError 103 unless the reservation exists and holds exactly `ips`. */
export function ipamCheck(deps: IpamDeps, config: StoreLocation, key: AttachmentKey, ips: string[]): AttachmentRecord {
  return check(deps.openStore(config.dataDir, config.network), key.containerID, key.ifname, ips);
}

/** Releases every attachment of the network not in `valid`; returns what it released. */
export function ipamGc(deps: IpamDeps, config: StoreLocation, valid: AttachmentKey[]): AttachmentRecord[] {
  const out = gc(deps.openStore(config.dataDir, config.network), valid);
  report(deps, out.warnings);
  for (const r of out.released) deps.warn?.(`GC released ${keyText(r)} (${r.ips.map((i) => i.address).join(', ')})`);
  return out.released;
}

/** Throws CniError 50 when ADD could not succeed now (store not writable, a range set full). */
export function ipamStatus(deps: IpamDeps, config: IpamConfig): void {
  const s = status(deps.openStore(config.dataDir, config.network), config);
  if (!s.ok) throw new CniError(ErrorCode.NotAvailable, s.reason ?? 'IPAM not available', `network ${config.network}`);
}

/** The attachment's record, if it has one. */
export function getAttachment(deps: IpamDeps, config: StoreLocation, key: AttachmentKey): AttachmentRecord | undefined {
  validateAttachmentKey(key);
  const store = deps.openStore(config.dataDir, config.network);
  return store.withLock(() => store.get(key), () => undefined);
}

/**
 * What the store knows of an attachment: its record, or, without one, whether the store can
 * prove the attachment has left nothing behind (`absent`). It can when the store exists, is
 * clean (every locked section that changed it returned, so by the commit rule no address is
 * reserved to a key without a record) and holds no record file of the key, not even a torn
 * one. A missing store (a wiped or moved data dir, a renamed network), a store a killed
 * process left mid-change, or an unreadable record prove nothing.
 */
export type AttachmentLookup = { record: AttachmentRecord; absent: false } | { record: undefined; absent: boolean };

export function lookupAttachment(deps: IpamDeps, config: StoreLocation, key: AttachmentKey): AttachmentLookup {
  validateAttachmentKey(key);
  const store = deps.openStore(config.dataDir, config.network);
  return store.withLock(
    (): AttachmentLookup => {
      const record = store.get(key);
      if (record) return { record, absent: false };
      return { record: undefined, absent: !store.needsRepair() && !store.recorded(key) };
    },
    () => ({ record: undefined, absent: false }),
  );
}

/**
 * Merges what the command learned after the reservation (host veth, netns, port mappings...)
 * into the record. Key, network, ips, bootId and createdAt stay. CniError 3 when there is none.
 * Cheap by design, as ADD calls it after wiring: the lock, one record read, one atomic
 * replace (no repair, no listing, no fsync: see disk-store.ts).
 */
export function updateAttachment(deps: IpamDeps, config: StoreLocation, key: AttachmentKey, patch: AttachmentPatch): AttachmentRecord {
  validateAttachmentKey(key);
  const store = deps.openStore(config.dataDir, config.network);
  return store.withLock(() => {
    const rec = store.get(key);
    if (!rec) throw new CniError(ErrorCode.UnknownContainer, `no IPAM record for ${keyText(key)} on network ${config.network}`, keyText(key));
    const { hostVeth, netnsPath, netns, portMappings, ipMasq, bridge, extra } = patch;
    const next: AttachmentRecord = {
      ...rec,
      ...(hostVeth !== undefined && { hostVeth }),
      ...(netnsPath !== undefined && { netnsPath }),
      ...(netns !== undefined && { netns }),
      ...(portMappings !== undefined && { portMappings }),
      ...(ipMasq !== undefined && { ipMasq }),
      ...(bridge !== undefined && { bridge }),
      ...(extra !== undefined && { extra: { ...rec.extra, ...extra } }),
    };
    store.save(next);
    return next;
  });
}

/**
 * Every attachment of every network under dataDir (for `pier ls --json`), read without locks:
 * records are replaced atomically, so each one read is whole. Sorted by network, then age.
 */
export function listAttachments(dataDir: string): AttachmentRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(dataDir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw ioError(err, 'readdir', dataDir);
  }
  const all: AttachmentRecord[] = [];
  for (const name of names.sort()) {
    if (!NAME_PATTERN.test(name)) continue;
    if (!fs.statSync(`${dataDir}/${name}`, { throwIfNoEntry: false })?.isDirectory()) continue;
    const records = new DiskStore(dataDir, name).list();
    records.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    all.push(...records);
  }
  return all;
}

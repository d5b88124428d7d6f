// Pier's per-attachment records and the pod-netns checks every command shares.
import * as nl from '../../netlink/index.ts';
import type { AttachmentInit, AttachmentPatch } from '../../ipam/attachment.ts';
import { type AttachmentLookup, getAttachment, lookupAttachment, updateAttachment } from '../../ipam/ipam.ts';
import { CniError, ErrorCode } from '../errors.ts';
import type { Ctx } from './context.ts';
import { isoTime } from '../../base/iso-time.ts';

/**
 * Refuses a CNI_NETNS that is not a network namespace, or that is Pier's own (a DEL there would
 * delete the host's interface); returns its identity for the record.
 */
export function checkPodNetns(path: string, override: boolean): nl.NetnsIdentity {
  if (!path.startsWith('/') || !nl.isNetnsFile(path)) {
    throw new CniError(ErrorCode.InvalidEnv, `CNI_NETNS ${JSON.stringify(path)} is not a network namespace`, 'CNI_NETNS');
  }
  const id = nl.netnsIdentity(path);
  if (!override && nl.sameNetns(id, nl.ownNetnsIdentity())) {
    throw new CniError(ErrorCode.NetnsIsOwn, 'CNI_NETNS is the plugin\'s own network namespace', `${path}; set CNI_NETNS_OVERRIDE=1 if this is intended`);
  }
  return id;
}

/** For DEL: the pod netns to use, or undefined when it is absent, gone or not the recorded one. */
export function usablePodNetns(path: string | undefined, override: boolean, recorded?: nl.NetnsIdentity): string | undefined {
  if (!path || !path.startsWith('/') || !nl.isNetnsFile(path)) return undefined;
  const id = nl.netnsIdentity(path);
  if (nl.sameNetns(id, nl.ownNetnsIdentity())) {
    if (!override) {
      throw new CniError(ErrorCode.NetnsIsOwn, 'CNI_NETNS is the plugin\'s own network namespace', `${path}; set CNI_NETNS_OVERRIDE=1 if this is intended`);
    }
    // Allowed, but never searched for what to delete: here "CNI_IFNAME and its veth peer" can
    // be the host's own interfaces (an eth0 that is a veth), and the pair proof would delete
    // them. DEL then goes by the record alone (the recorded host veth on the bridge).
    return undefined;
  }
  // A path whose netns is not the one ADD saw (PID reuse, a recycled name): do not touch it.
  if (recorded && !nl.sameNetns(id, recorded)) return undefined;
  return path;
}

/**
 * For a record with no host veth name, the netns ADD recorded, while it still is that namespace
 * (same path and identity) and not Pier's own. ADD names the host veth in the record only after
 * wiring, so an ADD killed in between leaves a veth pair that DEL without CNI_NETNS and GC can
 * reach only through the pod; left alone, its pod end keeps an address that is being released.
 * A record that names its veth is handled by name, as before.
 */
export function recordedPodNetns(record: { hostVeth?: string; netnsPath?: string; netns?: nl.NetnsIdentity } | undefined): string | undefined {
  const path = record?.netnsPath;
  if (!path || record.hostVeth || !record.netns || !path.startsWith('/') || !nl.isNetnsFile(path)) return undefined;
  const id = nl.netnsIdentity(path);
  if (!nl.sameNetns(id, record.netns) || nl.sameNetns(id, nl.ownNetnsIdentity())) return undefined;
  return path;
}

/** With a delegated or no IPAM, Pier stores the record itself (no addresses reserved there). */
export function saveOwnRecord(ctx: Ctx, init: AttachmentInit): void {
  const store = ctx.deps.ipam.openStore(ctx.records.dataDir, ctx.records.network);
  store.withLock(() => {
    if (store.get(init)) throw new CniError(ErrorCode.InvalidConfig, `attachment ${init.containerID}/${init.ifname} already exists on network ${ctx.records.network}`);
    store.save({
      containerID: init.containerID,
      ifname: init.ifname,
      network: ctx.records.network,
      ips: [],
      ...(init.hostVeth && { hostVeth: init.hostVeth }),
      ...(init.netnsPath && { netnsPath: init.netnsPath }),
      ...(init.netns && { netns: init.netns }),
      portMappings: init.portMappings ?? [],
      ipMasq: init.ipMasq ?? false,
      bridge: init.bridge ?? '',
      bootId: ctx.deps.ipam.bootId,
      createdAt: ctx.deps.ipam.now ? ctx.deps.ipam.now().toISOString() : isoTime(Date.now()),
      extra: init.extra ?? {},
    });
  });
}

export function updateRecord(ctx: Ctx, key: { containerID: string; ifname: string }, patch: AttachmentPatch): void {
  updateAttachment(ctx.deps.ipam, ctx.records, key, patch);
}

export function getRecord(ctx: Ctx, key: { containerID: string; ifname: string }) {
  return getAttachment(ctx.deps.ipam, ctx.records, key);
}

/** The record, or whether the store proves there is nothing of this attachment's (DEL). */
export function lookupRecord(ctx: Ctx, key: { containerID: string; ifname: string }): AttachmentLookup {
  return lookupAttachment(ctx.deps.ipam, ctx.records, key);
}

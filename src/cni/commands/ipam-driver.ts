// The IPAM half of each command: Pier's own (in-process) or a delegated plugin from CNI_PATH,
// behind one small interface.
import { CniError, ErrorCode, toCniError } from '../errors.ts';
import { compareVersions } from '../versions.ts';
import { parsePrevResult, type CniResult } from '../result.ts';
import type { CniRoute } from '../../base/route.ts';
import type { Ctx } from './context.ts';
import { execDelegate } from './delegate.ts';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../../ipam/ipam.ts';
import type { AttachmentInit, AttachmentRecord } from '../../ipam/attachment.ts';

/** What IPAM hands the main plugin on ADD. */
export interface IpamOutcome {
  ips: Array<{ address: string; gateway?: string }>;
  routes: CniRoute[];
  dns: CniResult['dns'];
}

function key(ctx: Ctx) {
  const env = ctx.env as { containerId: string; ifname: string };
  return { containerID: env.containerId, ifname: env.ifname };
}

/** ADD: reserves addresses (recording `init` with Pier's IPAM) and returns them. */
export function ipamAddFor(ctx: Ctx, init: AttachmentInit, requested: string[]): IpamOutcome {
  if (ctx.ipam) {
    const r = ipamAdd(ctx.deps.ipam, ctx.ipam, init, requested);
    return { ips: r.ips, routes: r.routes, dns: r.dns };
  }
  if (ctx.delegateIpam) {
    const out = execDelegate(ctx.delegateIpam, 'ADD', ctx.rawEnv, ctx.stdin, ctx.env.path);
    if (!out) throw new CniError(ErrorCode.Delegate, `IPAM plugin ${ctx.delegateIpam} returned no result`);
    const r = parsePrevResult(out, ctx.conf.cniVersion);
    return { ips: (r.ips ?? []).map((i) => ({ address: i.address, ...(i.gateway && { gateway: i.gateway }) })), routes: r.routes ?? [], dns: r.dns };
  }
  if (requested.length) throw new CniError(ErrorCode.InvalidConfig, 'static IPs were requested but the network has no IPAM', requested.join(','));
  return { ips: [], routes: [], dns: undefined };
}

/** DEL: releases; "nothing to release" is success. */
export function ipamDelFor(ctx: Ctx): void {
  if (ctx.ipam || !ctx.delegateIpam) {
    // Pier's store holds the record either way; release() is a no-op when there is none.
    ipamDel(ctx.deps.ipam, ctx.records, key(ctx));
    return;
  }
  execDelegate(ctx.delegateIpam, 'DEL', ctx.rawEnv, ctx.stdin, ctx.env.path);
  ipamDel(ctx.deps.ipam, ctx.records, key(ctx));
}

/** CHECK: the reservation still holds exactly these addresses. */
export function ipamCheckFor(ctx: Ctx, ips: string[]): void {
  if (ctx.ipam) ipamCheck(ctx.deps.ipam, ctx.records, key(ctx), ips);
  else if (ctx.delegateIpam) execDelegate(ctx.delegateIpam, 'CHECK', ctx.rawEnv, ctx.stdin, ctx.env.path);
}

export function ipamStatusFor(ctx: Ctx): void {
  if (ctx.ipam) ipamStatus(ctx.deps.ipam, ctx.ipam);
  else if (ctx.delegateIpam && delegateSpeaks(ctx, ctx.delegateIpam)) {
    execDelegate(ctx.delegateIpam, 'STATUS', ctx.rawEnv, ctx.stdin, ctx.env.path);
  }
}

/** GC of Pier's store: releases every attachment not valid; returns the records (to unwire them). */
export function ipamGcFor(ctx: Ctx, valid: Array<{ containerID: string; ifname: string }>): AttachmentRecord[] {
  return ipamGc(ctx.deps.ipam, ctx.records, valid);
}

/**
 * GC of a delegated IPAM plugin. One that speaks the config's version gets the GC. An older one
 * (Debian's host-local speaks up to 1.0.0 and has no GC; `pier gc` sends 1.1.0) would refuse
 * it, and keep the addresses of every attachment GC released: it gets a DEL for each of those
 * instead (CNI_NETNS empty, the config in the newest version it speaks), as libcni DELs the
 * attachments it has cached. Each failed DEL is reported through `report`; the others go on.
 */
export function delegateGcFor(ctx: Ctx, released: AttachmentRecord[], report: (e: CniError) => void): void {
  const type = ctx.delegateIpam!;
  const versions = delegateVersions(ctx, type);
  if (versions.includes(ctx.conf.cniVersion)) {
    execDelegate(type, 'GC', ctx.rawEnv, ctx.stdin, ctx.env.path);
    return;
  }
  const newest = [...versions].sort(compareVersions).at(-1);
  if (!newest) throw new CniError(ErrorCode.Delegate, `IPAM plugin ${type} reports no CNI version it speaks`, JSON.stringify(versions));
  ctx.deps.log.info(`GC: ${type} does not speak CNI ${ctx.conf.cniVersion}: releasing through DEL`, { versions });
  const stdin = JSON.stringify({ ...ctx.conf.raw, cniVersion: newest });
  for (const r of released) {
    try {
      const env = { ...ctx.rawEnv, CNI_CONTAINERID: r.containerID, CNI_IFNAME: r.ifname, CNI_NETNS: '' };
      execDelegate(type, 'DEL', env, stdin, ctx.env.path);
    } catch (err) {
      report(toCniError(err));
    }
  }
}

const isVersion = (v: unknown): v is string => typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v);

/** The versions a delegated plugin says it speaks (its VERSION reply). */
function delegateVersions(ctx: Ctx, type: string): string[] {
  const reply = execDelegate(type, 'VERSION', ctx.rawEnv, ctx.stdin, ctx.env.path) as { supportedVersions?: unknown } | undefined;
  return Array.isArray(reply?.supportedVersions) ? reply.supportedVersions.filter(isVersion) : [];
}

/**
 * Whether the delegated plugin speaks the config's version. STATUS only reaches one that does:
 * an older one has no STATUS, and would turn "ready" into "not ready" for its version alone.
 */
function delegateSpeaks(ctx: Ctx, type: string): boolean {
  if (delegateVersions(ctx, type).includes(ctx.conf.cniVersion)) return true;
  ctx.deps.log.debug(`STATUS: ${type} does not speak CNI ${ctx.conf.cniVersion}: not asked`);
  return false;
}

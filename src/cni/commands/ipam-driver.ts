// The IPAM half of each command: Pier's own (in-process) or a delegated plugin from CNI_PATH,
// behind one small interface.
import { CniError, ErrorCode } from '../errors.ts';
import { parsePrevResult, type CniResult } from '../result.ts';
import type { CniRoute } from '../../base/route.ts';
import type { Ctx } from './context.ts';
import { execDelegate } from './delegate.ts';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../../ipam/ipam.ts';
import type { AttachmentInit } from '../../ipam/attachment.ts';

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
  else if (ctx.delegateIpam) execDelegate(ctx.delegateIpam, 'STATUS', ctx.rawEnv, ctx.stdin, ctx.env.path);
}

/** GC: releases everything not valid; returns the records released (to unwire them). */
export function ipamGcFor(ctx: Ctx, valid: Array<{ containerID: string; ifname: string }>) {
  if (ctx.delegateIpam) execDelegate(ctx.delegateIpam, 'GC', ctx.rawEnv, ctx.stdin, ctx.env.path);
  return ipamGc(ctx.deps.ipam, ctx.records, valid);
}

// `pier-ipam`: Pier's IPAM as a standalone IPAM plugin, for other main plugins (e.g. the
// reference bridge with `"ipam": {"type": "pier-ipam"}`).
import { CniError, ErrorCode } from '../errors.ts';
import { convertResult } from '../result.ts';
import { requestedIps, resultDns } from '../config.ts';
import type { AttachEnv, DelEnv, NodeEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { validAttachmentsOf } from './gc.ts';
import { ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus } from '../../ipam/ipam.ts';

export async function ipamPluginCommand(ctx: Ctx): Promise<Record<string, unknown> | undefined> {
  const ipam = ctx.ipam;
  if (!ipam) throw new CniError(ErrorCode.InvalidConfig, 'pier-ipam needs "ipam": {"type": "pier-ipam", ...}', `ipam.type is ${JSON.stringify(ctx.conf.ipam?.type ?? '')}`);
  const deps = ctx.deps.ipam;
  switch (ctx.env.command) {
    case 'ADD': {
      const env = ctx.env as AttachEnv;
      const r = ipamAdd(deps, ipam, { containerID: env.containerId, ifname: env.ifname, netnsPath: env.netns }, requestedIps(ctx.conf, ctx.cniArgs));
      return convertResult({ ips: r.ips, routes: r.routes, dns: resultDns(ctx.conf, r.dns) }, ctx.conf.cniVersion);
    }
    case 'DEL': {
      const env = ctx.env as DelEnv;
      ipamDel(deps, ipam, { containerID: env.containerId, ifname: env.ifname });
      return undefined;
    }
    case 'CHECK': {
      const env = ctx.env as AttachEnv;
      const ips = (ctx.conf.prevResult?.ips ?? []).map((i) => i.address);
      ipamCheck(deps, ipam, { containerID: env.containerId, ifname: env.ifname }, ips);
      return undefined;
    }
    case 'STATUS':
      ipamStatus(deps, ipam);
      return undefined;
    case 'GC': {
      void (ctx.env as NodeEnv);
      ipamGc(deps, ipam, validAttachmentsOf(ctx.conf));
      return undefined;
    }
    default:
      throw new CniError(ErrorCode.InvalidEnv, `unexpected CNI_COMMAND ${ctx.env.command}`);
  }
}

// Builds the NAT driver's view of a network and of one attachment from a command's context.
import type { PortMapping } from '../runtime-config.ts';
import type { Ctx } from './context.ts';
import type { NatAttachment, NatNetwork } from './nat.ts';

/** The network as NAT sees it; subnets come from the IPAM config or, failing that, the pod's IPs. */
export function natNetwork(ctx: Ctx, podSubnets: string[] = []): NatNetwork {
  const subnets = ctx.ipam ? ctx.ipam.ranges.flatMap((set) => set.map((r) => r.subnet)) : podSubnets;
  return {
    name: ctx.conf.name,
    bridge: ctx.conf.bridge,
    subnets: [...new Set(subnets)],
    ipMasq: ctx.conf.ipMasq,
    portMappings: ctx.conf.capabilities.portMappings === true,
    ...(typeof ctx.conf.nftTable === 'string' && { table: ctx.conf.nftTable }),
  };
}

export function natAttachment(key: { containerID: string; ifname: string }, ips: string[], portMappings: PortMapping[]): NatAttachment {
  return { ...key, ips, portMappings };
}

// CNI STATUS (1.1): ready to serve ADD? Cheap: the store is writable with free addresses, nft
// works when the network needs it, and no other table drops the traffic the network forwards.
import { existsSync } from 'node:fs';
import { CniError, ErrorCode } from '../errors.ts';
import type { NodeEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamStatusFor } from './ipam-driver.ts';
import { natNetwork } from './nat-spec.ts';

/**
 * Both NAT problems are code 50 ("not available"), not a success with a warning: STATUS has no
 * warnings, only 0 or an error, and the runtime shows its message as the node's network
 * condition. ADD would still "succeed" on such a host, but pods would get addresses and no
 * connectivity: a forward chain with `policy drop` in another table (docker's `ip filter
 * FORWARD`, a host firewall) drops forwarded traffic whatever Pier's table accepts, and no nft
 * means no masquerade or hostPorts. Saying so, with the fix, beats pods that silently cannot
 * talk. Networks that forward (isGateway) are checked for the drop, and every network when
 * br_netfilter sends bridged traffic through the forward hook (the driver reads the sysctls);
 * a chain that accepts the bridge by name both ways is taken as configured for Pier.
 */
export async function cmdStatus(ctx: Ctx<NodeEnv>): Promise<void> {
  // A conflist written by `pier agent` names the file the agent writes once this node's routes
  // are in place. The conflist outlives a reboot (/etc), the file does not (/run): until the
  // agent has run again, the node's pods could not reach other nodes.
  if (ctx.conf.readyFile && !existsSync(ctx.conf.readyFile)) {
    throw new CniError(ErrorCode.NotAvailable, 'the pier agent has not set up this node\'s network yet', `${ctx.conf.readyFile} does not exist; is pier agent running?`);
  }
  ipamStatusFor(ctx);
  const net = natNetwork(ctx);
  // Port mappings come with each ADD: a network that may get them needs nft like one with ipMasq.
  const need = { nat: ctx.deps.nat.needed(net) || net.portMappings, forwarding: ctx.conf.isGateway };
  const why = await ctx.deps.nat.status(net, need);
  if (why) throw new CniError(ErrorCode.NotAvailable, why, `network ${ctx.conf.name}`);
}

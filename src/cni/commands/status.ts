// CNI STATUS (1.1): ready to serve ADD? Cheap: the store is writable with free addresses, and
// nft works when the network needs it.
import { CniError, ErrorCode } from '../errors.ts';
import type { NodeEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamStatusFor } from './ipam-driver.ts';
import { natNetwork } from './nat-spec.ts';

export async function cmdStatus(ctx: Ctx<NodeEnv>): Promise<void> {
  ipamStatusFor(ctx);
  const net = natNetwork(ctx);
  if (ctx.deps.nat.needed(net)) {
    const why = await ctx.deps.nat.status(net);
    if (why) throw new CniError(ErrorCode.NotAvailable, why, `network ${ctx.conf.name}`);
  }
}

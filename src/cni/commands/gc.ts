// CNI GC (1.1): releases every attachment of the network that the runtime no longer lists,
// with its veth and NAT entries.
import * as nl from '../../netlink/index.ts';
import { Handles, unwirePod } from '../../bridge/wire.ts';
import { toCniError, type CniError } from '../errors.ts';
import type { NodeEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamGcFor } from './ipam-driver.ts';
import { natNetwork } from './nat-spec.ts';
import { recordedPodNetns } from './records.ts';

export async function cmdGc(ctx: Ctx<NodeEnv>): Promise<void> {
  const { conf, deps } = ctx;
  // cnitool sends no list at all: the spec reads that as "nothing is valid".
  const valid = conf.validAttachments ?? [];
  const released = ipamGcFor(ctx, valid);
  const errors: CniError[] = [];
  const h = new Handles();
  try {
    const host = h.sock(nl.NetlinkSocket.open());
    for (const r of released) {
      try {
        // The record proves the veth by name. Only a record without one (ADD killed while wiring)
        // uses its netns, and only while it is still the one ADD saw: it may be gone or reused.
        const did = unwirePod({ bridge: r.bridge || conf.bridge, ifname: r.ifname, hostVeth: r.hostVeth, netnsPath: recordedPodNetns(r) }, host, h);
        deps.log.info(`GC ${r.containerID}/${r.ifname}: ${did}`);
      } catch (err) {
        errors.push(toCniError(err));
      }
    }
  } finally {
    h.close();
  }
  try {
    await deps.nat.gc(natNetwork(ctx), valid);
  } catch (err) {
    errors.push(toCniError(err));
  }
  if (errors.length) throw errors[0];
}

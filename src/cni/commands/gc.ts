// CNI GC (1.1): releases every attachment of the network that the runtime no longer lists,
// with its veth and NAT entries. Every step runs even when an earlier one failed; the errors
// are reported together at the end.
import * as nl from '../../netlink/index.ts';
import { Handles, unwirePod } from '../../bridge/wire.ts';
import type { AttachmentRecord } from '../../ipam/attachment.ts';
import { CniError, ErrorCode, combineErrors, toCniError } from '../errors.ts';
import type { Attachment, NetConf } from '../config.ts';
import type { NodeEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { delegateGcFor, ipamGcFor } from './ipam-driver.ts';
import { natNetwork } from './nat-spec.ts';
import { recordedPodNetns } from './records.ts';

/**
 * The runtime's list of live attachments. A GC without one is refused: read as "nothing is
 * valid" (as Pier did), `cnitool gc` (which sends no list) tore down every pod of the network.
 */
export function validAttachmentsOf(conf: NetConf): Attachment[] {
  if (conf.validAttachments) return conf.validAttachments;
  throw new CniError(
    ErrorCode.InvalidConfig,
    'GC needs cni.dev/valid-attachments, the list of attachments to keep: without it every attachment of the network would be released',
    'cnitool gc sends no list: run `pier gc -c CONF` instead (it keeps the attachments whose netns still exists); a runtime that means "keep none" sends "cni.dev/valid-attachments": []',
  );
}

export async function cmdGc(ctx: Ctx<NodeEnv>): Promise<void> {
  const { conf, deps } = ctx;
  const valid = validAttachmentsOf(conf);
  const errors: CniError[] = [];
  /** Runs one step; false when it failed (its error is kept for the reply). */
  const step = async (what: string, fn: () => unknown): Promise<boolean> => {
    try {
      await fn();
      return true;
    } catch (err) {
      const e = toCniError(err);
      deps.log.error(`GC: ${what} failed`, { error: e });
      errors.push(e);
      return false;
    }
  };

  // NAT entries first, records after: a record outlives its NAT entries, as in DEL (del.ts says
  // why a DEL without a record does not look for entries). When they could not be removed, the
  // records stay for the next GC or DEL.
  let released: AttachmentRecord[] = [];
  if (await step('removing NAT entries', () => deps.nat.gc(natNetwork(ctx), valid))) {
    await step('releasing the reservations and records', () => {
      released = ipamGcFor(ctx, valid);
    });
    if (ctx.delegateIpam) {
      await step(`GC of IPAM plugin ${ctx.delegateIpam}`, () => delegateGcFor(ctx, released, (e) => errors.push(e)));
    }
  } else {
    deps.log.warn('GC: NAT entries not removed; keeping the reservations and records for the next GC');
  }
  await step('removing veth pairs', () => {
    const h = new Handles();
    try {
      const host = h.sock(nl.NetlinkSocket.open());
      for (const r of released) {
        try {
          // The record proves the veth by name. Only a record without one (ADD killed while
          // wiring) uses its netns, and only while it is still the one ADD saw.
          const did = unwirePod({ bridge: r.bridge || conf.bridge, ifname: r.ifname, hostVeth: r.hostVeth, netnsPath: recordedPodNetns(r) }, host, h);
          deps.log.info(`GC ${r.containerID}/${r.ifname}: ${did}`);
        } catch (err) {
          errors.push(toCniError(err));
        }
      }
    } finally {
      h.close();
    }
  });
  const failed = combineErrors('GC', errors);
  if (failed) throw failed;
}

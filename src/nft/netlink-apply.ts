// Applies an element plan as one nf_tables netlink batch from Pier's own process: no nft
// process for the per-attachment changes (issue 6). The batch is all or nothing like
// `nft -j -f`; a SysError names the refused message's operation, set and errno.
import { NetlinkSocket } from '../netlink/socket.ts';
import { NETLINK_NETFILTER, sendBatch } from '../netlink/nfnetlink-batch.ts';
import { ownNetnsIdentity, sameNetns, type NetnsIdentity } from '../netlink/netns.ts';
import type { ElementPlan } from './build-attachment.ts';
import { buildElementMessages, NFNL_SUBSYS_NFTABLES } from './netlink-elements.ts';

/**
 * The nf_tables socket is kept open until the process ends (or a batch comes from another
 * netns). Closing a netfilter socket makes the kernel first finish destroying the transactions
 * committed so far (on NETLINK_URELEASE nf_tables flushes its destroy work, which waits for an
 * RCU grace period): 3-25 ms measured, paid in the middle of every ADD and DEL. Left open, the
 * socket is closed as the process exits, and the grace period has run meanwhile alongside the
 * rest of the command (the veth's creation, or its deletion, which waits for grace periods of
 * its own).
 */
let kept: { sock: NetlinkSocket; netns: NetnsIdentity } | undefined;

function socketHere(): NetlinkSocket {
  const netns = ownNetnsIdentity();
  if (kept && sameNetns(kept.netns, netns)) return kept.sock;
  kept?.sock.close();
  kept = { sock: NetlinkSocket.open(undefined, NETLINK_NETFILTER), netns };
  return kept.sock;
}

/** Sends `plan` as one batch in the current netns (never call it while switched to another). */
export function applyElementBatch(plan: ElementPlan): void {
  const messages = buildElementMessages(plan);
  if (!messages.length) return;
  sendBatch(socketHere(), NFNL_SUBSYS_NFTABLES, messages);
}

/** Closes the kept socket now (tests; a plugin run leaves it to the process's exit). */
export function closeElementSocket(): void {
  kept?.sock.close();
  kept = undefined;
}

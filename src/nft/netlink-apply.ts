// Applies an element plan as one nf_tables netlink batch from Pier's own process: no nft
// process for the per-attachment changes (issue 6). The batch is all or nothing like
// `nft -j -f`; a SysError names the refused message's operation, set and errno.
import { withSocket } from '../netlink/socket.ts';
import { NETLINK_NETFILTER, sendBatch } from '../netlink/nfnetlink-batch.ts';
import type { ElementPlan } from './build-attachment.ts';
import { buildElementMessages, NFNL_SUBSYS_NFTABLES } from './netlink-elements.ts';

/** Sends `plan` as one batch in the current netns (never call it while switched to another). */
export function applyElementBatch(plan: ElementPlan): void {
  const messages = buildElementMessages(plan);
  if (!messages.length) return;
  withSocket((sock) => sendBatch(sock, NFNL_SUBSYS_NFTABLES, messages), NETLINK_NETFILTER);
}

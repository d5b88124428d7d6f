// nfnetlink batches (linux/netfilter/nfnetlink.h): messages framed by BATCH_BEGIN and
// BATCH_END, which a subsystem such as nf_tables applies as one transaction, all or nothing.
// Framing is pure; `sendBatch` is the thin part that talks to the kernel.
import { SysError } from './libc.ts';
import { decodeError, encodeMessage } from './codec.ts';
import { NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST } from './constants.ts';
import type { NetlinkSocket } from './socket.ts';

export const NETLINK_NETFILTER = 12;
export const NFNL_MSG_BATCH_BEGIN = 0x10;
export const NFNL_MSG_BATCH_END = 0x11;
export const NFNETLINK_V0 = 0;

/** One message of a batch, with what it is about for error messages. */
export interface NfMessage {
  type: number;
  flags: number;
  /** nfgenmsg and attributes. */
  payload: Buffer;
  /** `NFT_MSG_NEWSETELEM`. */
  op: string;
  /** `pier/podaddrs4_cbr0_1a2b3c4d`. */
  object: string;
}

/** The part of NetlinkSocket a batch needs (a fake in unit tests). */
export type BatchSocket = Pick<NetlinkSocket, 'reserveSeq' | 'sendRaw' | 'receiveRaw'>;

/** struct nfgenmsg: family, version, res_id (big-endian: the subsystem for batch messages). */
export function encodeNfgenmsg(family: number, resId = 0): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(family, 0);
  b.writeUInt8(NFNETLINK_V0, 1);
  b.writeUInt16BE(resId, 2);
  return b;
}

/**
 * The batch as one datagram: BATCH_BEGIN at `firstSeq`, the messages after it, BATCH_END last.
 * `ack` adds NLM_F_ACK to each message so that every one is answered, not only failures.
 */
export function encodeBatch(subsys: number, messages: readonly NfMessage[], firstSeq: number, ack: boolean): Buffer {
  const frame = (type: number, seq: number) =>
    encodeMessage({ type, flags: NLM_F_REQUEST, seq, pid: 0, payload: encodeNfgenmsg(0, subsys) });
  return Buffer.concat([
    frame(NFNL_MSG_BATCH_BEGIN, firstSeq),
    ...messages.map((m, i) =>
      encodeMessage({ type: m.type, flags: NLM_F_REQUEST | m.flags | (ack ? NLM_F_ACK : 0), seq: (firstSeq + 1 + i) >>> 0, pid: 0, payload: m.payload }),
    ),
    frame(NFNL_MSG_BATCH_END, (firstSeq + 1 + messages.length) >>> 0),
  ]);
}

/**
 * Sends `messages` as one batch of `subsys` and waits for every message's ACK. Throws SysError
 * for the first message the kernel refused (the whole batch is then undone), naming its
 * operation and object.
 *
 * The kernel processes a batch within the send call and queues all its answers before the call
 * returns; it keeps going after an error so that every message is answered, except when it
 * refuses the batch as a whole (answered on BATCH_BEGIN's sequence number). So after the first
 * reply everything is already queued: reading without waiting until the queue is empty cannot
 * miss an answer.
 */
export function sendBatch(sock: BatchSocket, subsys: number, messages: readonly NfMessage[]): void {
  if (!messages.length) return;
  const first = sock.reserveSeq(messages.length + 2);
  const what = (i: number) => messages[i] ?? { op: 'nfnetlink batch', object: '' };
  sock.sendRaw(encodeBatch(subsys, messages, first, true));
  const answered = new Set<number>();
  let failure: SysError | undefined;
  for (let wait = true; answered.size < messages.length; wait = false) {
    const replies = sock.receiveRaw(what(0).op, !wait);
    if (!replies) break;
    for (const m of replies) {
      const i = ((m.seq - first) >>> 0) - 1; // -1: BATCH_BEGIN
      if (m.type !== NLMSG_ERROR || i < -1 || i >= messages.length) continue;
      const e = decodeError(m);
      if (e.errno !== 0 && !failure) failure = new SysError(e.errno, what(i).op, what(i).object, e.extack ?? '');
      answered.add(i);
    }
    // An answer on BATCH_BEGIN's number refuses the batch as a whole: nothing else will come.
    if (answered.has(-1)) break;
  }
  if (failure) throw failure;
  if (answered.size < messages.length) {
    throw new Error(`nfnetlink batch: ${messages.length - answered.size} of ${messages.length} messages unanswered`);
  }
}

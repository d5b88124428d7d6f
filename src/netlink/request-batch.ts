// Many rtnetlink requests per sendmsg: the kernel handles every message of a datagram in turn
// (netlink_rcv_skb) and answers each one that asks for an ACK, failed or not, so hundreds of
// routes, neighbour and FDB entries cost a few system calls instead of one round trip each.
// Unlike an nfnetlink batch this is no transaction: each message succeeds or fails on its own,
// and the caller gets every failure. Framing and chunking are pure; `sendRequests` is the thin
// part that talks to the kernel.
import { SysError } from './libc.ts';
import { decodeError, encodeMessage } from './codec.ts';
import { NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST, RTM_NAMES } from './constants.ts';
import type { BatchSocket } from './nfnetlink-batch.ts';

/** One request: message type, flags besides REQUEST|ACK, payload, and what it is about. */
export interface NlRequest {
  type: number;
  flags: number;
  payload: Buffer;
  /** `10.244.1.0/24 via 203.0.113.2`, for error messages. */
  object: string;
}

/** A request the kernel refused, with its position in the list given to sendRequests. */
export interface RequestFailure {
  index: number;
  request: NlRequest;
  error: SysError;
}

export interface BatchLimits {
  /**
   * Messages per datagram. Each ACK takes ~768 bytes of the socket's receive buffer (skb
   * truesize, measured on 6.18), and the kernel drops the ones that do not fit (ENOBUFS).
   */
  maxMessages: number;
  /** Bytes per datagram; the kernel refuses a datagram larger than the send buffer (EMSGSIZE). */
  maxBytes: number;
}

/**
 * 128 messages: their ACKs fit the default receive buffer (net.core.rmem_default, 208 KiB,
 * overflowed at ~280 ACKs) with room to spare; 64 KiB is far below the default send buffer.
 */
export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxMessages: 128, maxBytes: 64 * 1024 };

/**
 * For a socket whose receive buffer was raised to LARGE_RECEIVE_BUFFER (setReceiveBuffer):
 * 1024 ACKs take ~800 KiB of its 4 MiB; 160 KiB stays below the default send buffer (208 KiB).
 */
export const LARGE_BATCH_LIMITS: BatchLimits = { maxMessages: 1024, maxBytes: 160 * 1024 };
export const LARGE_RECEIVE_BUFFER = 4 * 1024 * 1024;

export interface BatchReport {
  failures: RequestFailure[];
  /** sendmsg calls made. */
  datagrams: number;
  messages: number;
}

const align4 = (n: number) => (n + 3) & ~3;
const framedSize = (r: NlRequest) => align4(16 + r.payload.length);

/** Splits requests into datagrams within `limits`, keeping their order. */
export function chunkRequests(reqs: readonly NlRequest[], limits: BatchLimits = DEFAULT_BATCH_LIMITS): NlRequest[][] {
  const chunks: NlRequest[][] = [];
  let cur: NlRequest[] = [];
  let bytes = 0;
  for (const r of reqs) {
    const size = framedSize(r);
    if (cur.length && (cur.length >= limits.maxMessages || bytes + size > limits.maxBytes)) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += size;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

/** The requests as one datagram, sequence numbers `firstSeq`, `firstSeq + 1`, ..., each asking for an ACK. */
export function encodeRequests(reqs: readonly NlRequest[], firstSeq: number): Buffer {
  return Buffer.concat(
    reqs.map((r, i) => encodeMessage({ type: r.type, flags: NLM_F_REQUEST | NLM_F_ACK | r.flags, seq: (firstSeq + i) >>> 0, pid: 0, payload: r.payload })),
  );
}

/**
 * Sends `reqs` in datagrams of at most `limits` and collects every answer. Returns the refused
 * requests (the others took effect) and how many datagrams it took; throws only when answers
 * are missing, which means the receive buffer overflowed and the outcome is unknown.
 *
 * The kernel handles a datagram within the send call and queues all its answers before the call
 * returns, so after the first answer, reading without waiting until the queue is empty cannot
 * miss one.
 */
export function sendRequests(sock: BatchSocket, reqs: readonly NlRequest[], limits: BatchLimits = DEFAULT_BATCH_LIMITS): BatchReport {
  const report: BatchReport = { failures: [], datagrams: 0, messages: reqs.length };
  let offset = 0;
  for (const chunk of chunkRequests(reqs, limits)) {
    const first = sock.reserveSeq(chunk.length);
    sock.sendRaw(encodeRequests(chunk, first));
    report.datagrams++;
    const answered = new Set<number>();
    for (let wait = true; answered.size < chunk.length; wait = false) {
      const replies = sock.receiveRaw(RTM_NAMES[chunk[0].type] ?? 'netlink batch', !wait);
      if (!replies) break;
      for (const m of replies) {
        const i = (m.seq - first) >>> 0;
        if (m.type !== NLMSG_ERROR || i >= chunk.length || answered.has(i)) continue;
        answered.add(i);
        const e = decodeError(m);
        if (e.errno !== 0) {
          const r = chunk[i];
          report.failures.push({ index: offset + i, request: r, error: new SysError(e.errno, RTM_NAMES[r.type] ?? `netlink type ${r.type}`, r.object, e.extack ?? '') });
        }
      }
    }
    if (answered.size < chunk.length) {
      throw new Error(`netlink batch: ${chunk.length - answered.size} of ${chunk.length} requests unanswered (receive buffer overflow?)`);
    }
    offset += chunk.length;
  }
  report.failures.sort((a, b) => a.index - b.index);
  return report;
}

// A synchronous netlink socket (rtnetlink unless told otherwise): one request at a time,
// sequence-checked, ACKs and extended-ACK errors decoded, dumps read to NLMSG_DONE, and a
// receive timeout. nfnetlink batches (nfnetlink-batch.ts) use its raw send and receive.
import * as libc from './libc.ts';
import { SysError } from './libc.ts';
import { decodeError, decodeMessages, encodeMessage, type NlMessage } from './codec.ts';
import {
  NETLINK_ROUTE, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR,
  NLM_F_REQUEST, RTM_NAMES,
} from './constants.ts';

const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const RECV_BUFFER = 256 * 1024;
/** A reply the kernel owes us within this time never comes (or the netns is wedged). */
export const DEFAULT_TIMEOUT_MS = 5000;

function sockaddrNl(pid = 0, groups = 0): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(libc.AF_NETLINK, 0);
  b.writeUInt32LE(pid, 4);
  b.writeUInt32LE(groups, 8);
  return b;
}

export interface RequestOptions {
  /** What the request is about, for error messages: `veth1234`, `10.1.0.2/24 dev eth0`. */
  object?: string;
}

/** A netlink socket, bound to the netns of the thread that opened it. */
export class NetlinkSocket {
  private seq: number;
  private readonly buf = Buffer.allocUnsafe(RECV_BUFFER);
  private closed = false;

  private constructor(
    readonly fd: number,
    readonly portId: number,
  ) {
    this.seq = Math.floor(Math.random() * 0x7fffffff);
  }

  /** Opens a socket of `protocol` (default NETLINK_ROUTE) in the current thread's netns. */
  static open(timeoutMs = DEFAULT_TIMEOUT_MS, protocol = NETLINK_ROUTE): NetlinkSocket {
    const fd = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW, protocol);
    try {
      // Best effort: extended ACKs explain EINVAL; strict checking enables kernel-side dump
      // filters. Old kernels lack them, which only costs detail and filtering.
      for (const opt of [libc.NETLINK_EXT_ACK, libc.NETLINK_GET_STRICT_CHK, libc.NETLINK_CAP_ACK]) {
        try {
          libc.setsockoptInt(fd, libc.SOL_NETLINK, opt, 1);
        } catch {
          /* unsupported on this kernel */
        }
      }
      libc.setRecvTimeout(fd, timeoutMs);
      libc.bind(fd, sockaddrNl());
      const portId = libc.getsockname(fd, 12).readUInt32LE(4);
      return new NetlinkSocket(fd, portId);
    } catch (err) {
      libc.close(fd);
      throw err;
    }
  }

  /**
   * Sets the receive buffer to `bytes` (SO_RCVBUFFORCE, which root may set past
   * net.core.rmem_max); false when the kernel refuses. A batch of N requests queues N ACKs of
   * ~768 bytes each (skb truesize) before the first is read.
   */
  setReceiveBuffer(bytes: number): boolean {
    try {
      libc.setsockoptInt(this.fd, libc.SOL_SOCKET, libc.SO_RCVBUFFORCE, bytes);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    libc.close(this.fd);
  }

  /** Reserves `count` consecutive sequence numbers; returns the first. */
  reserveSeq(count: number): number {
    const first = (this.seq + 1) >>> 0;
    this.seq = (this.seq + count) >>> 0;
    return first;
  }

  /** Sends already framed messages (a batch) to the kernel as one datagram. */
  sendRaw(buf: Buffer): void {
    if (this.closed) throw new Error('netlink socket is closed');
    libc.sendto(this.fd, buf, sockaddrNl());
  }

  /**
   * Receives one datagram's messages addressed to this socket; with `dontWait`, undefined when
   * nothing is queued. A timeout throws SysError(EAGAIN) with `op`.
   */
  receiveRaw(op: string, dontWait = false): NlMessage[] | undefined {
    if (this.closed) throw new Error('netlink socket is closed');
    let n: number;
    try {
      n = libc.recv(this.fd, this.buf, MSG_TRUNC | (dontWait ? MSG_DONTWAIT : 0));
    } catch (err) {
      if (dontWait && err instanceof SysError && err.errno === libc.errnoOf('EAGAIN')) return undefined;
      if (err instanceof SysError) throw new SysError(err.errno, op, '', 'no reply from the kernel');
      throw err;
    }
    if (n > this.buf.length) throw new Error(`${op}: netlink reply of ${n} bytes exceeds the receive buffer`);
    return decodeMessages(this.buf.subarray(0, n)).filter((m) => m.pid === 0 || m.pid === this.portId);
  }

  /** Sends a request and waits for its ACK (or error). */
  request(type: number, flags: number, payload: Buffer, opts: RequestOptions = {}): void {
    this.exchange(type, NLM_F_REQUEST | NLM_F_ACK | flags, payload, opts);
  }

  /** Sends a request and returns the replies (a `get` of one object, or a dump). */
  query(type: number, flags: number, payload: Buffer, opts: RequestOptions = {}): NlMessage[] {
    return this.exchange(type, NLM_F_REQUEST | flags, payload, opts);
  }

  /** Dumps: NLM_F_DUMP, all parts until NLMSG_DONE; retried when the kernel flags it interrupted. */
  dump(type: number, payload: Buffer, opts: RequestOptions = {}): NlMessage[] {
    for (let attempt = 0; ; attempt++) {
      const { messages, interrupted } = this.exchangeRaw(type, NLM_F_REQUEST | NLM_F_DUMP, payload, opts);
      if (!interrupted || attempt >= 3) return messages;
    }
  }

  private exchange(type: number, flags: number, payload: Buffer, opts: RequestOptions): NlMessage[] {
    return this.exchangeRaw(type, flags, payload, opts).messages;
  }

  private exchangeRaw(
    type: number,
    flags: number,
    payload: Buffer,
    opts: RequestOptions,
  ): { messages: NlMessage[]; interrupted: boolean } {
    if (this.closed) throw new Error('netlink socket is closed');
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const op = RTM_NAMES[type] ?? `netlink type ${type}`;
    libc.sendto(this.fd, encodeMessage({ type, flags, seq, pid: 0, payload }), sockaddrNl());
    const isDump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    const wantsAck = (flags & NLM_F_ACK) !== 0;
    const messages: NlMessage[] = [];
    let interrupted = false;
    for (;;) {
      let n: number;
      try {
        n = libc.recv(this.fd, this.buf, MSG_TRUNC);
      } catch (err) {
        if (err instanceof SysError) throw new SysError(err.errno, op, opts.object ?? '', 'no reply from the kernel');
        throw err;
      }
      if (n > this.buf.length) throw new Error(`${op}: netlink reply of ${n} bytes exceeds the receive buffer`);
      for (const m of decodeMessages(this.buf.subarray(0, n))) {
        // Replies to earlier, abandoned requests (after a timeout) carry another seq: skip them.
        if (m.seq !== seq || (m.pid !== 0 && m.pid !== this.portId)) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_NOOP) continue;
        if (m.type === NLMSG_ERROR) {
          const e = decodeError(m);
          if (e.errno !== 0) throw new SysError(e.errno, op, opts.object ?? '', e.extack ?? '');
          return { messages, interrupted }; // the ACK ends the exchange
        }
        if (m.type === NLMSG_DONE) return { messages, interrupted };
        messages.push(m);
        // A plain get without ACK ends with its one reply.
        if (!isDump && !wantsAck) return { messages, interrupted };
      }
    }
  }
}

/** Runs fn with a fresh socket in the current netns and closes it afterwards. */
export function withSocket<T>(fn: (sock: NetlinkSocket) => T, protocol = NETLINK_ROUTE): T {
  const sock = NetlinkSocket.open(DEFAULT_TIMEOUT_MS, protocol);
  try {
    return fn(sock);
  } finally {
    sock.close();
  }
}

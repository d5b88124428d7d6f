// Pure netlink framing: nlmsghdr and nlattr (TLV) encoding and decoding, no I/O.
import { NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_TYPE_MASK, NLMSG_HDRLEN } from './constants.ts';

/** One netlink attribute. Unknown attributes are kept as raw bytes so they round-trip. */
export interface Attr {
  type: number;
  data: Buffer;
  /** NLA_F_NESTED was set on the wire (or must be set when encoding). */
  nested?: boolean;
  /** NLA_F_NET_BYTEORDER was set on the wire. */
  netByteOrder?: boolean;
}

/** One netlink message: the nlmsghdr fields and the payload after it. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  payload: Buffer;
}

export const align4 = (n: number): number => (n + 3) & ~3;

/** Encodes a list of attributes, each padded to 4 bytes. */
export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const size = attrs.reduce((n, a) => n + align4(4 + a.data.length), 0);
  const out = Buffer.alloc(size);
  let off = 0;
  for (const a of attrs) {
    const len = 4 + a.data.length;
    out.writeUInt16LE(len, off);
    out.writeUInt16LE(a.type | (a.nested ? NLA_F_NESTED : 0) | (a.netByteOrder ? NLA_F_NET_BYTEORDER : 0), off + 2);
    a.data.copy(out, off + 4);
    off += align4(len);
  }
  return out;
}

/** Decodes attributes; stops at the first malformed one (the kernel never sends those). */
export function decodeAttrs(buf: Buffer): Attr[] {
  const attrs: Attr[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < 4 || off + len > buf.length) break;
    const a: Attr = { type: rawType & NLA_TYPE_MASK, data: Buffer.from(buf.subarray(off + 4, off + len)) };
    if (rawType & NLA_F_NESTED) a.nested = true;
    if (rawType & NLA_F_NET_BYTEORDER) a.netByteOrder = true;
    attrs.push(a);
    off += align4(len);
  }
  return attrs;
}

/** Builders for attribute values in host byte order (netlink is host-endian, x86/arm: LE). */
export const nla = {
  u8: (type: number, v: number): Attr => ({ type, data: Buffer.from([v & 0xff]) }),
  u16: (type: number, v: number): Attr => {
    const d = Buffer.alloc(2);
    d.writeUInt16LE(v);
    return { type, data: d };
  },
  u32: (type: number, v: number): Attr => {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(v >>> 0);
    return { type, data: d };
  },
  s32: (type: number, v: number): Attr => {
    const d = Buffer.alloc(4);
    d.writeInt32LE(v);
    return { type, data: d };
  },
  /** A NUL-terminated string, as the kernel expects for names and kinds. */
  str: (type: number, s: string): Attr => ({ type, data: Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]) }),
  bytes: (type: number, b: Buffer): Attr => ({ type, data: Buffer.from(b) }),
  nested: (type: number, attrs: readonly Attr[]): Attr => ({ type, data: encodeAttrs(attrs), nested: true }),
  /** A nested attribute the kernel parses without NLA_F_NESTED (old-style, e.g. IFLA_LINKINFO). */
  nestedLegacy: (type: number, attrs: readonly Attr[]): Attr => ({ type, data: encodeAttrs(attrs) }),
};

/** Readers for attribute values. */
export const read = {
  u8: (a: Attr): number => a.data.readUInt8(0),
  u16: (a: Attr): number => a.data.readUInt16LE(0),
  u32: (a: Attr): number => a.data.readUInt32LE(0),
  s32: (a: Attr): number => a.data.readInt32LE(0),
  str: (a: Attr): string => {
    const nul = a.data.indexOf(0);
    return a.data.subarray(0, nul < 0 ? a.data.length : nul).toString('utf8');
  },
  nested: (a: Attr): Attr[] => decodeAttrs(a.data),
};

export function findAttr(attrs: readonly Attr[], type: number): Attr | undefined {
  return attrs.find((a) => a.type === type);
}

/** Encodes one message with its nlmsghdr. */
export function encodeMessage(m: NlMessage): Buffer {
  const out = Buffer.alloc(align4(NLMSG_HDRLEN + m.payload.length));
  out.writeUInt32LE(NLMSG_HDRLEN + m.payload.length, 0);
  out.writeUInt16LE(m.type, 4);
  out.writeUInt16LE(m.flags, 6);
  out.writeUInt32LE(m.seq >>> 0, 8);
  out.writeUInt32LE(m.pid >>> 0, 12);
  m.payload.copy(out, NLMSG_HDRLEN);
  return out;
}

/** Splits a datagram into messages; a truncated tail is an error (the socket buffer was short). */
export function decodeMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new Error(`truncated netlink message at offset ${off}`);
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      payload: Buffer.from(buf.subarray(off + NLMSG_HDRLEN, off + len)),
    });
    off += align4(len);
  }
  return out;
}

/** Decoded NLMSG_ERROR payload: errno (0 for an ACK) and the extended-ACK text, if any. */
export interface NlError {
  errno: number;
  extack?: string;
  offset?: number;
}

export function decodeError(m: NlMessage): NlError {
  const error = m.payload.readInt32LE(0);
  const res: NlError = { errno: -error };
  if (!(m.flags & NLM_F_ACK_TLVS_FLAG)) return res;
  // After the errno comes the request's header, and its payload too unless NLM_F_CAPPED.
  const origLen = m.payload.readUInt32LE(4);
  const skip = 4 + (m.flags & NLM_F_CAPPED_FLAG ? NLMSG_HDRLEN : origLen);
  for (const a of decodeAttrs(m.payload.subarray(align4(skip)))) {
    if (a.type === 1) res.extack = read.str(a);
    if (a.type === 2) res.offset = read.u32(a);
  }
  return res;
}
const NLM_F_CAPPED_FLAG = 0x100;
const NLM_F_ACK_TLVS_FLAG = 0x200;

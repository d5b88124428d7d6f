// Pure codec for RTM_*ADDR messages: struct ifaddrmsg plus IFA_* attributes.
import { decodeAttrs, encodeAttrs, findAttr, nla, read, type Attr } from './codec.ts';
import {
  AF_INET, AF_INET6, IFADDRMSG_LEN, IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS, IFA_LABEL, IFA_LOCAL,
  RT_SCOPE_UNIVERSE,
} from './constants.ts';
import { bytesToIp, ipToBytes, parseCidr } from './ip-bytes.ts';

/** struct ifaddrmsg */
export interface IfAddrMsg {
  family: number;
  prefixLen: number;
  flags: number;
  scope: number;
  index: number;
}

export interface AddrMessage {
  info: IfAddrMsg;
  attrs: Attr[];
}

export function encodeAddrMessage(m: { info: IfAddrMsg; attrs?: readonly Attr[] }): Buffer {
  const h = Buffer.alloc(IFADDRMSG_LEN);
  h.writeUInt8(m.info.family, 0);
  h.writeUInt8(m.info.prefixLen, 1);
  h.writeUInt8(m.info.flags & 0xff, 2);
  h.writeUInt8(m.info.scope, 3);
  h.writeUInt32LE(m.info.index, 4);
  return Buffer.concat([h, encodeAttrs(m.attrs ?? [])]);
}

export function decodeAddrMessage(payload: Buffer): AddrMessage {
  return {
    info: {
      family: payload.readUInt8(0),
      prefixLen: payload.readUInt8(1),
      flags: payload.readUInt8(2),
      scope: payload.readUInt8(3),
      index: payload.readUInt32LE(4),
    },
    attrs: decodeAttrs(payload.subarray(IFADDRMSG_LEN)),
  };
}

/** An interface address as Pier uses it. */
export interface Address {
  index: number;
  family: 4 | 6;
  /** `10.1.2.3/24` */
  cidr: string;
  ip: string;
  prefixLen: number;
  scope: number;
  /** IFA_FLAGS (32-bit) when present, else the 8-bit ifa_flags. */
  flags: number;
  label?: string;
}

export function addressFromMessage(m: AddrMessage): Address {
  // For IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on p2p links).
  const a = findAttr(m.attrs, IFA_LOCAL) ?? findAttr(m.attrs, IFA_ADDRESS);
  const ip = a ? bytesToIp(a.data) : '';
  const f = findAttr(m.attrs, IFA_FLAGS);
  const label = findAttr(m.attrs, IFA_LABEL);
  const addr: Address = {
    index: m.info.index,
    family: m.info.family === AF_INET6 ? 6 : 4,
    cidr: `${ip}/${m.info.prefixLen}`,
    ip,
    prefixLen: m.info.prefixLen,
    scope: m.info.scope,
    flags: f ? read.u32(f) : m.info.flags,
  };
  if (label) addr.label = read.str(label);
  return addr;
}

/** IPv4 broadcast for an address and prefix, as `ip addr add ... brd +` computes it. */
function broadcast4(ip: Buffer, prefix: number): Buffer {
  const n = ip.readUInt32BE(0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const b = Buffer.alloc(4);
  b.writeUInt32BE((n | ~mask) >>> 0);
  return b;
}

export interface AddrSpec {
  index: number;
  /** `10.1.2.3/24` or `fd00::2/64` */
  cidr: string;
  /** IFA_F_* flags such as IFA_F_NODAD, IFA_F_NOPREFIXROUTE. */
  flags?: number;
  scope?: number;
}

/** RTM_NEWADDR / RTM_DELADDR payload. IPv4 gets IFA_LOCAL and a broadcast for prefixes < 31. */
export function buildAddr(o: AddrSpec): Buffer {
  const { ip, prefix, family } = parseCidr(o.cidr);
  const bytes = ipToBytes(ip);
  const attrs: Attr[] = [];
  if (family === 4) {
    attrs.push(nla.bytes(IFA_LOCAL, bytes), nla.bytes(IFA_ADDRESS, bytes));
    if (prefix < 31) attrs.push(nla.bytes(IFA_BROADCAST, broadcast4(bytes, prefix)));
  } else {
    attrs.push(nla.bytes(IFA_ADDRESS, bytes));
  }
  const flags = o.flags ?? 0;
  // Flags above 8 bits only fit in IFA_FLAGS; send it whenever flags are set.
  if (flags) attrs.push(nla.u32(IFA_FLAGS, flags));
  return encodeAddrMessage({
    info: { family: family === 4 ? AF_INET : AF_INET6, prefixLen: prefix, flags: flags & 0xff, scope: o.scope ?? RT_SCOPE_UNIVERSE, index: o.index },
    attrs,
  });
}

/** RTM_GETADDR dump payload; with strict checking the kernel filters by ifindex. */
export function buildAddrDump(filter: { family?: 4 | 6; index?: number } = {}): Buffer {
  const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : 0;
  return encodeAddrMessage({ info: { family, prefixLen: 0, flags: 0, scope: 0, index: filter.index ?? 0 } });
}

// Pure codec for RTM_*NEIGH messages: struct ndmsg plus NDA_* attributes. The same message
// type carries two things: a neighbour entry (family AF_INET/AF_INET6: an IP's link-layer
// address, what `ip neigh` shows) and a forwarding database entry (family AF_BRIDGE: where a
// MAC lives; on a vxlan device, the underlay IP behind a MAC, what `bridge fdb` shows).
import { decodeAttrs, encodeAttrs, findAttr, nla, read, type Attr } from './codec.ts';
import {
  AF_BRIDGE, AF_INET, AF_INET6, NDA_DST, NDA_IFINDEX, NDA_LLADDR, NDA_MASTER, NDA_PORT, NDA_VNI,
  NDMSG_LEN, NTF_SELF, NUD_NOARP, NUD_PERMANENT,
} from './constants.ts';
import { bytesToIp, familyOf, ipToBytes, macToBytes, macToString } from './ip-bytes.ts';

/** struct ndmsg */
export interface NdMsg {
  family: number;
  index: number;
  state: number;
  flags: number;
  type: number;
}

export interface NeighMessage {
  info: NdMsg;
  attrs: Attr[];
}

export function encodeNeighMessage(m: { info: NdMsg; attrs?: readonly Attr[] }): Buffer {
  const h = Buffer.alloc(NDMSG_LEN);
  h.writeUInt8(m.info.family, 0);
  // ndm_pad1 (u8) and ndm_pad2 (u16) stay zero: strict dump checking refuses anything else.
  h.writeInt32LE(m.info.index, 4);
  h.writeUInt16LE(m.info.state, 8);
  h.writeUInt8(m.info.flags, 10);
  h.writeUInt8(m.info.type, 11);
  return Buffer.concat([h, encodeAttrs(m.attrs ?? [])]);
}

export function decodeNeighMessage(payload: Buffer): NeighMessage {
  return {
    info: {
      family: payload.readUInt8(0),
      index: payload.readInt32LE(4),
      state: payload.readUInt16LE(8),
      flags: payload.readUInt8(10),
      type: payload.readUInt8(11),
    },
    attrs: decodeAttrs(payload.subarray(NDMSG_LEN)),
  };
}

/** A neighbour entry: `ip neigh add IP lladdr MAC dev IFINDEX nud permanent`. */
export interface Neighbour {
  index: number;
  ip: string;
  mac?: string;
  /** NUD_* bits. */
  state: number;
  flags: number;
}

/** A forwarding database entry: `bridge fdb add MAC dev IFINDEX dst IP self permanent`. */
export interface FdbEntry {
  index: number;
  mac: string;
  /** The remote underlay IP (NDA_DST) of a vxlan device's entry. */
  dst?: string;
  state: number;
  flags: number;
  /** Bridge ifindex (NDA_MASTER) for entries of a bridge port. */
  master?: number;
  port?: number;
  vni?: number;
}

export function neighbourFromMessage(m: NeighMessage): Neighbour {
  const dst = findAttr(m.attrs, NDA_DST);
  const ll = findAttr(m.attrs, NDA_LLADDR);
  const n: Neighbour = { index: m.info.index, ip: dst ? bytesToIp(dst.data) : '', state: m.info.state, flags: m.info.flags };
  if (ll && ll.data.length === 6) n.mac = macToString(ll.data);
  return n;
}

export function fdbFromMessage(m: NeighMessage): FdbEntry {
  const ll = findAttr(m.attrs, NDA_LLADDR);
  const e: FdbEntry = { index: m.info.index, mac: ll && ll.data.length === 6 ? macToString(ll.data) : '', state: m.info.state, flags: m.info.flags };
  const dst = findAttr(m.attrs, NDA_DST);
  if (dst) e.dst = bytesToIp(dst.data);
  const master = findAttr(m.attrs, NDA_MASTER);
  if (master) e.master = read.u32(master);
  const port = findAttr(m.attrs, NDA_PORT);
  if (port) e.port = port.data.readUInt16BE(0);
  const vni = findAttr(m.attrs, NDA_VNI);
  if (vni) e.vni = read.u32(vni);
  return e;
}

/**
 * RTM_NEWNEIGH / RTM_DELNEIGH payload of a neighbour entry, permanent unless told: what
 * `ip neigh add IP lladdr MAC dev IF nud permanent` sends (NDA_DST, then NDA_LLADDR).
 */
export function buildNeighbour(o: { index: number; ip: string; mac?: string; state?: number }): Buffer {
  const attrs: Attr[] = [nla.bytes(NDA_DST, ipToBytes(o.ip))];
  if (o.mac !== undefined) attrs.push(nla.bytes(NDA_LLADDR, macToBytes(o.mac)));
  return encodeNeighMessage({
    info: { family: familyOf(o.ip) === 4 ? AF_INET : AF_INET6, index: o.index, state: o.state ?? NUD_PERMANENT, flags: 0, type: 0 },
    attrs,
  });
}

/**
 * RTM_NEWNEIGH / RTM_DELNEIGH payload of a static FDB entry on the device itself (NTF_SELF,
 * as for a vxlan device, not its bridge): what `bridge fdb add MAC dev IF dst IP self permanent`
 * sends (state NUD_NOARP|NUD_PERMANENT, NDA_LLADDR, then NDA_DST).
 */
export function buildFdb(o: { index: number; mac: string; dst?: string }): Buffer {
  const attrs: Attr[] = [nla.bytes(NDA_LLADDR, macToBytes(o.mac))];
  if (o.dst !== undefined) attrs.push(nla.bytes(NDA_DST, ipToBytes(o.dst)));
  return encodeNeighMessage({
    info: { family: AF_BRIDGE, index: o.index, state: NUD_NOARP | NUD_PERMANENT, flags: NTF_SELF, type: 0 },
    attrs,
  });
}

/**
 * RTM_GETNEIGH dump payload. With strict checking the kernel wants the header's ifindex zero
 * for neighbour dumps (the device goes in NDA_IFINDEX) and takes it from the header for FDB
 * dumps (family AF_BRIDGE), as iproute2 sends them.
 */
export function buildNeighDump(filter: { family: 4 | 6 | 'bridge'; index?: number }): Buffer {
  if (filter.family === 'bridge') {
    return encodeNeighMessage({ info: { family: AF_BRIDGE, index: filter.index ?? 0, state: 0, flags: 0, type: 0 } });
  }
  const attrs: Attr[] = filter.index !== undefined ? [nla.u32(NDA_IFINDEX, filter.index)] : [];
  return encodeNeighMessage({ info: { family: filter.family === 4 ? AF_INET : AF_INET6, index: 0, state: 0, flags: 0, type: 0 }, attrs });
}

// Pure codec for RTM_*LINK messages: struct ifinfomsg plus IFLA_* attributes, and the builders
// of every link request Pier sends.
import { decodeAttrs, encodeAttrs, findAttr, nla, read, type Attr } from './codec.ts';
import {
  AF_BRIDGE, AF_UNSPEC, BRIDGE_VLAN_INFO_PVID, BRIDGE_VLAN_INFO_UNTAGGED, IFF_PROMISC, IFF_UP,
  IFINFOMSG_LEN, IFLA_ADDRESS, IFLA_AF_SPEC, IFLA_BRIDGE_VLAN_INFO, IFLA_BRPORT_ISOLATED,
  IFLA_BRPORT_LEARNING, IFLA_BRPORT_MODE, IFLA_BR_VLAN_FILTERING, IFLA_EXT_MASK, IFLA_IFNAME,
  IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_INFO_SLAVE_KIND, IFLA_LINK, IFLA_LINKINFO,
  IFLA_LINK_NETNSID, IFLA_MASTER, IFLA_MTU, IFLA_NET_NS_FD, IFLA_OPERSTATE, IFLA_PROMISCUITY,
  IFLA_PROTINFO, IFLA_VXLAN_ID, IFLA_VXLAN_LEARNING, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LOCAL6, IFLA_VXLAN_PORT,
  RTEXT_FILTER_SKIP_STATS, VETH_INFO_PEER,
} from './constants.ts';
import { bytesToIp, familyOf, ipToBytes, macToBytes, macToString } from './ip-bytes.ts';

/** struct ifinfomsg */
export interface IfInfoMsg {
  family: number;
  type: number;
  index: number;
  flags: number;
  change: number;
}

export interface LinkMessage {
  info: IfInfoMsg;
  attrs: Attr[];
}

export function encodeIfInfo(h: Partial<IfInfoMsg>): Buffer {
  const b = Buffer.alloc(IFINFOMSG_LEN);
  b.writeUInt8(h.family ?? AF_UNSPEC, 0);
  b.writeUInt16LE(h.type ?? 0, 2);
  b.writeInt32LE(h.index ?? 0, 4);
  b.writeUInt32LE((h.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((h.change ?? 0) >>> 0, 12);
  return b;
}

export function encodeLinkMessage(m: { info: Partial<IfInfoMsg>; attrs?: readonly Attr[] }): Buffer {
  return Buffer.concat([encodeIfInfo(m.info), encodeAttrs(m.attrs ?? [])]);
}

export function decodeLinkMessage(payload: Buffer): LinkMessage {
  return {
    info: {
      family: payload.readUInt8(0),
      type: payload.readUInt16LE(2),
      index: payload.readInt32LE(4),
      flags: payload.readUInt32LE(8),
      change: payload.readUInt32LE(12),
    },
    attrs: decodeAttrs(payload.subarray(IFINFOMSG_LEN)),
  };
}

/** What Pier needs to know about a link, read from an RTM_NEWLINK reply. */
export interface Link {
  index: number;
  name: string;
  flags: number;
  up: boolean;
  mtu?: number;
  mac?: string;
  /** ifindex of the bridge this link is a port of. */
  master?: number;
  /** IFLA_INFO_KIND: `bridge`, `veth`, ... */
  kind?: string;
  /** IFLA_INFO_SLAVE_KIND: `bridge` for a bridge port. */
  slaveKind?: string;
  /** IFLA_LINK: for a veth, the peer's ifindex (in the peer's netns). */
  peerIndex?: number;
  /** IFLA_LINK_NETNSID: set when the peer lives in another netns. */
  linkNetnsId?: number;
  operstate?: number;
  promiscuity?: number;
  /** A bridge's IFLA_BR_VLAN_FILTERING. */
  vlanFiltering?: boolean;
  /** For a vxlan link: its settings from IFLA_INFO_DATA. */
  vxlan?: VxlanInfo;
}

/** A vxlan device's settings as the kernel reports them. */
export interface VxlanInfo {
  vni: number;
  /** UDP destination port (0: the kernel's default, 8472). */
  port: number;
  learning: boolean;
  /** The fixed source address of the underlay, when one is set. */
  local?: string;
}

function vxlanFromData(attrs: readonly Attr[]): VxlanInfo {
  const id = findAttr(attrs, IFLA_VXLAN_ID);
  const port = findAttr(attrs, IFLA_VXLAN_PORT);
  const learning = findAttr(attrs, IFLA_VXLAN_LEARNING);
  const local = findAttr(attrs, IFLA_VXLAN_LOCAL) ?? findAttr(attrs, IFLA_VXLAN_LOCAL6);
  const v: VxlanInfo = {
    vni: id ? read.u32(id) : 0,
    // IFLA_VXLAN_PORT is big-endian (network byte order), unlike the other attributes.
    port: port ? port.data.readUInt16BE(0) : 0,
    learning: learning ? read.u8(learning) !== 0 : true,
  };
  if (local) v.local = bytesToIp(local.data);
  return v;
}

export function linkFromMessage(m: LinkMessage): Link {
  const a = m.attrs;
  const get = (t: number) => findAttr(a, t);
  const link: Link = {
    index: m.info.index,
    name: get(IFLA_IFNAME) ? read.str(get(IFLA_IFNAME)!) : '',
    flags: m.info.flags,
    up: (m.info.flags & IFF_UP) !== 0,
  };
  const mtu = get(IFLA_MTU);
  if (mtu) link.mtu = read.u32(mtu);
  const addr = get(IFLA_ADDRESS);
  if (addr && addr.data.length === 6) link.mac = macToString(addr.data);
  const master = get(IFLA_MASTER);
  if (master) link.master = read.u32(master);
  const peer = get(IFLA_LINK);
  if (peer) link.peerIndex = read.s32(peer);
  const nsid = get(IFLA_LINK_NETNSID);
  if (nsid) link.linkNetnsId = read.s32(nsid);
  const op = get(IFLA_OPERSTATE);
  if (op) link.operstate = read.u8(op);
  const promisc = get(IFLA_PROMISCUITY);
  if (promisc) link.promiscuity = read.u32(promisc);
  const info = get(IFLA_LINKINFO);
  if (info) {
    const inner = read.nested(info);
    const kind = findAttr(inner, IFLA_INFO_KIND);
    if (kind) link.kind = read.str(kind);
    const slave = findAttr(inner, IFLA_INFO_SLAVE_KIND);
    if (slave) link.slaveKind = read.str(slave);
    const data = findAttr(inner, IFLA_INFO_DATA);
    const filtering = data && link.kind === 'bridge' ? findAttr(read.nested(data), IFLA_BR_VLAN_FILTERING) : undefined;
    if (filtering) link.vlanFiltering = read.u8(filtering) === 1;
    if (link.kind === 'vxlan' && data) link.vxlan = vxlanFromData(read.nested(data));
  }
  return link;
}

// ---- request builders (payloads after the nlmsghdr) ----

function commonAttrs(o: { mtu?: number; mac?: string; netnsFd?: number }): Attr[] {
  const attrs: Attr[] = [];
  if (o.mtu !== undefined) attrs.push(nla.u32(IFLA_MTU, o.mtu));
  if (o.mac !== undefined) attrs.push(nla.bytes(IFLA_ADDRESS, macToBytes(o.mac)));
  if (o.netnsFd !== undefined) attrs.push(nla.u32(IFLA_NET_NS_FD, o.netnsFd));
  return attrs;
}

export interface NewBridge {
  name: string;
  mtu?: number;
  mac?: string;
  vlanFiltering?: boolean;
}

/** RTM_NEWLINK payload creating a bridge. */
export function buildNewBridge(o: NewBridge): Buffer {
  const info: Attr[] = [nla.str(IFLA_INFO_KIND, 'bridge')];
  if (o.vlanFiltering !== undefined) info.push(nla.nested(IFLA_INFO_DATA, [nla.u8(IFLA_BR_VLAN_FILTERING, o.vlanFiltering ? 1 : 0)]));
  return encodeLinkMessage({
    info: {},
    attrs: [nla.str(IFLA_IFNAME, o.name), ...commonAttrs(o), nla.nested(IFLA_LINKINFO, info)],
  });
}

/** RTM_NEWLINK payload changing an existing bridge's own options (VLAN filtering). */
export function buildSetBridge(o: { index: number; vlanFiltering: boolean }): Buffer {
  return encodeLinkMessage({
    info: { index: o.index },
    attrs: [
      nla.nested(IFLA_LINKINFO, [
        nla.str(IFLA_INFO_KIND, 'bridge'),
        nla.nested(IFLA_INFO_DATA, [nla.u8(IFLA_BR_VLAN_FILTERING, o.vlanFiltering ? 1 : 0)]),
      ]),
    ],
  });
}

export interface NewVeth {
  /** Name of the end created in the socket's netns. */
  name: string;
  mtu?: number;
  mac?: string;
  /** The other end. */
  peer: { name: string; netnsFd?: number; mtu?: number; mac?: string };
}

/** RTM_NEWLINK payload creating a veth pair; the peer can be born in another netns. */
export function buildNewVeth(o: NewVeth): Buffer {
  const peer = Buffer.concat([
    encodeIfInfo({}),
    encodeAttrs([nla.str(IFLA_IFNAME, o.peer.name), ...commonAttrs(o.peer)]),
  ]);
  return encodeLinkMessage({
    info: {},
    attrs: [
      nla.str(IFLA_IFNAME, o.name),
      ...commonAttrs(o),
      nla.nested(IFLA_LINKINFO, [
        nla.str(IFLA_INFO_KIND, 'veth'),
        nla.nested(IFLA_INFO_DATA, [{ type: VETH_INFO_PEER, data: peer, nested: true }]),
      ]),
    ],
  });
}

export interface NewVxlan {
  name: string;
  vni: number;
  /** UDP destination port. */
  port: number;
  /** Learn remote MACs from received packets; off when the FDB is kept by a control plane. */
  learning?: boolean;
  mtu?: number;
  mac?: string;
  /**
   * The underlay source address. It also decides the underlay's family: a device without one
   * (or with an IPv4 one) sends over IPv4 only, so an IPv6 underlay needs it.
   */
  local?: string;
}

/**
 * RTM_NEWLINK payload creating a vxlan device with no default remote (every remote comes from a
 * static FDB entry) and, unless `local` is given, no fixed source (the kernel picks the underlay
 * source by route). The attributes and their order are what `ip link add NAME [mtu M] [address
 * A] type vxlan id VNI [local IP] [nolearning] dstport PORT` sends (it always states learning),
 * so the bytes can be compared.
 */
export function buildNewVxlan(o: NewVxlan): Buffer {
  const port = Buffer.alloc(2);
  port.writeUInt16BE(o.port);
  const data: Attr[] = [nla.u32(IFLA_VXLAN_ID, o.vni)];
  if (o.local !== undefined) data.push(nla.bytes(familyOf(o.local) === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, ipToBytes(o.local)));
  data.push(nla.u8(IFLA_VXLAN_LEARNING, o.learning ? 1 : 0));
  data.push({ type: IFLA_VXLAN_PORT, data: port });
  const attrs: Attr[] = [...commonAttrs(o), nla.str(IFLA_IFNAME, o.name)];
  // As iproute2 sends them: old-style nesting (no NLA_F_NESTED) and the kind without its NUL
  // (an NLA_STRING); the kernel takes either form of both.
  const kind = nla.bytes(IFLA_INFO_KIND, Buffer.from('vxlan'));
  attrs.push(nla.nestedLegacy(IFLA_LINKINFO, [kind, nla.nestedLegacy(IFLA_INFO_DATA, data)]));
  return encodeLinkMessage({ info: {}, attrs });
}

export interface SetLink {
  index: number;
  up?: boolean;
  promisc?: boolean;
  name?: string;
  mtu?: number;
  mac?: string;
  /** ifindex of the new master; 0 removes the link from its bridge. */
  master?: number;
  /** Moves the link into the netns this fd refers to. */
  netnsFd?: number;
}

/** RTM_NEWLINK (without NLM_F_CREATE) payload changing an existing link. */
export function buildSetLink(o: SetLink): Buffer {
  let flags = 0;
  let change = 0;
  if (o.up !== undefined) {
    change |= IFF_UP;
    if (o.up) flags |= IFF_UP;
  }
  if (o.promisc !== undefined) {
    change |= IFF_PROMISC;
    if (o.promisc) flags |= IFF_PROMISC;
  }
  const attrs: Attr[] = [];
  if (o.name !== undefined) attrs.push(nla.str(IFLA_IFNAME, o.name));
  attrs.push(...commonAttrs(o));
  if (o.master !== undefined) attrs.push(nla.u32(IFLA_MASTER, o.master));
  return encodeLinkMessage({ info: { index: o.index, flags, change }, attrs });
}

export interface BridgePort {
  index: number;
  hairpin?: boolean;
  isolated?: boolean;
  learning?: boolean;
}

/** RTM_SETLINK (family AF_BRIDGE) payload setting bridge-port options through IFLA_PROTINFO. */
export function buildSetBridgePort(o: BridgePort): Buffer {
  const port: Attr[] = [];
  if (o.hairpin !== undefined) port.push(nla.u8(IFLA_BRPORT_MODE, o.hairpin ? 1 : 0));
  if (o.learning !== undefined) port.push(nla.u8(IFLA_BRPORT_LEARNING, o.learning ? 1 : 0));
  if (o.isolated !== undefined) port.push(nla.u8(IFLA_BRPORT_ISOLATED, o.isolated ? 1 : 0));
  return encodeLinkMessage({ info: { family: AF_BRIDGE, index: o.index }, attrs: [nla.nested(IFLA_PROTINFO, port)] });
}

/** RTM_SETLINK/RTM_DELLINK (family AF_BRIDGE) payload adding or removing a VLAN on a port. */
export function buildBridgeVlan(o: { index: number; vid: number; pvid?: boolean; untagged?: boolean }): Buffer {
  const v = Buffer.alloc(4);
  v.writeUInt16LE((o.pvid ? BRIDGE_VLAN_INFO_PVID : 0) | (o.untagged ? BRIDGE_VLAN_INFO_UNTAGGED : 0), 0);
  v.writeUInt16LE(o.vid, 2);
  return encodeLinkMessage({
    info: { family: AF_BRIDGE, index: o.index },
    attrs: [nla.nested(IFLA_AF_SPEC, [{ type: IFLA_BRIDGE_VLAN_INFO, data: v }])],
  });
}

/** RTM_GETLINK/RTM_DELLINK payload naming one link by index or name. */
export function buildLinkRef(ref: { index?: number; name?: string }): Buffer {
  const attrs: Attr[] = [];
  if (ref.name !== undefined && !ref.index) attrs.push(nla.str(IFLA_IFNAME, ref.name));
  attrs.push(nla.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS));
  return encodeLinkMessage({ info: { index: ref.index ?? 0 }, attrs });
}

/** RTM_GETLINK dump payload; with strict checking the kernel filters by master and kind. */
export function buildLinkDump(filter: { master?: number; kind?: string } = {}): Buffer {
  const attrs: Attr[] = [nla.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)];
  if (filter.master !== undefined) attrs.push(nla.u32(IFLA_MASTER, filter.master));
  if (filter.kind !== undefined) attrs.push(nla.nested(IFLA_LINKINFO, [nla.str(IFLA_INFO_KIND, filter.kind)]));
  return encodeLinkMessage({ info: {}, attrs });
}

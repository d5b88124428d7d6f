// Pure codec for RTM_*ROUTE messages: struct rtmsg plus RTA_* attributes (and RTAX_* metrics).
import { decodeAttrs, encodeAttrs, findAttr, nla, read, type Attr } from './codec.ts';
import {
  AF_INET, AF_INET6, RTAX_ADVMSS, RTAX_MTU, RTA_DST, RTA_GATEWAY, RTA_METRICS, RTA_OIF,
  RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE, RTMSG_LEN, RTNH_F_ONLINK, RTN_UNICAST, RTPROT_BOOT, RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE, RT_TABLE_MAIN, RT_TABLE_UNSPEC,
} from './constants.ts';
import { bytesToIp, ipToBytes, parseCidr } from './ip-bytes.ts';

/** struct rtmsg */
export interface RtMsg {
  family: number;
  dstLen: number;
  srcLen: number;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
}

export interface RouteMessage {
  info: RtMsg;
  attrs: Attr[];
}

export function encodeRouteMessage(m: { info: RtMsg; attrs?: readonly Attr[] }): Buffer {
  const h = Buffer.alloc(RTMSG_LEN);
  const i = m.info;
  h.writeUInt8(i.family, 0);
  h.writeUInt8(i.dstLen, 1);
  h.writeUInt8(i.srcLen, 2);
  h.writeUInt8(i.tos, 3);
  h.writeUInt8(i.table, 4);
  h.writeUInt8(i.protocol, 5);
  h.writeUInt8(i.scope, 6);
  h.writeUInt8(i.type, 7);
  h.writeUInt32LE(i.flags, 8);
  return Buffer.concat([h, encodeAttrs(m.attrs ?? [])]);
}

export function decodeRouteMessage(payload: Buffer): RouteMessage {
  return {
    info: {
      family: payload.readUInt8(0),
      dstLen: payload.readUInt8(1),
      srcLen: payload.readUInt8(2),
      tos: payload.readUInt8(3),
      table: payload.readUInt8(4),
      protocol: payload.readUInt8(5),
      scope: payload.readUInt8(6),
      type: payload.readUInt8(7),
      flags: payload.readUInt32LE(8),
    },
    attrs: decodeAttrs(payload.subarray(RTMSG_LEN)),
  };
}

/** A route as Pier uses it. `dst` is a CIDR; the default route is `0.0.0.0/0` or `::/0`. */
export interface Route {
  family: 4 | 6;
  dst: string;
  gw?: string;
  /** Output interface index. */
  oif?: number;
  /** Metric (RTA_PRIORITY). */
  priority?: number;
  table?: number;
  scope?: number;
  protocol?: number;
  type?: number;
  prefsrc?: string;
  mtu?: number;
  advmss?: number;
  /** RTNH_F_ONLINK: the gateway is on `oif` whether or not an address of it covers the gateway. */
  onlink?: boolean;
}

export function routeFromMessage(m: RouteMessage): Route {
  const a = m.attrs;
  const family = m.info.family === AF_INET6 ? 6 : 4;
  const dstAttr = findAttr(a, RTA_DST);
  const dstIp = dstAttr ? bytesToIp(dstAttr.data) : family === 4 ? '0.0.0.0' : '::';
  const table = findAttr(a, RTA_TABLE);
  const r: Route = {
    family,
    dst: `${dstIp}/${m.info.dstLen}`,
    table: table ? read.u32(table) : m.info.table,
    scope: m.info.scope,
    protocol: m.info.protocol,
    type: m.info.type,
  };
  const gw = findAttr(a, RTA_GATEWAY);
  if (gw) r.gw = bytesToIp(gw.data);
  if (m.info.flags & RTNH_F_ONLINK) r.onlink = true;
  const oif = findAttr(a, RTA_OIF);
  if (oif) r.oif = read.u32(oif);
  const prio = findAttr(a, RTA_PRIORITY);
  if (prio) r.priority = read.u32(prio);
  const src = findAttr(a, RTA_PREFSRC);
  if (src) r.prefsrc = bytesToIp(src.data);
  const metrics = findAttr(a, RTA_METRICS);
  if (metrics) {
    for (const x of read.nested(metrics)) {
      if (x.type === RTAX_MTU) r.mtu = read.u32(x);
      if (x.type === RTAX_ADVMSS) r.advmss = read.u32(x);
    }
  }
  return r;
}

/**
 * RTM_NEWROUTE / RTM_DELROUTE payload. A route with no gateway is scope link (it is on the
 * link), one with a gateway scope universe, as `ip route add` decides.
 */
export function buildRoute(r: Omit<Route, 'family'> & { family?: 4 | 6 }): Buffer {
  const { ip, prefix, family } = parseCidr(r.dst);
  const table = r.table ?? RT_TABLE_MAIN;
  const attrs: Attr[] = [];
  if (prefix > 0) attrs.push(nla.bytes(RTA_DST, ipToBytes(ip)));
  if (r.gw) attrs.push(nla.bytes(RTA_GATEWAY, ipToBytes(r.gw)));
  if (r.oif !== undefined) attrs.push(nla.u32(RTA_OIF, r.oif));
  if (r.priority !== undefined) attrs.push(nla.u32(RTA_PRIORITY, r.priority));
  if (r.prefsrc) attrs.push(nla.bytes(RTA_PREFSRC, ipToBytes(r.prefsrc)));
  // rtm_table is 8 bits; tables above 255 only fit in RTA_TABLE.
  if (table > 255) attrs.push(nla.u32(RTA_TABLE, table));
  const metrics: Attr[] = [];
  if (r.mtu !== undefined) metrics.push(nla.u32(RTAX_MTU, r.mtu));
  if (r.advmss !== undefined) metrics.push(nla.u32(RTAX_ADVMSS, r.advmss));
  if (metrics.length) attrs.push(nla.nestedLegacy(RTA_METRICS, metrics));
  return encodeRouteMessage({
    info: {
      family: family === 4 ? AF_INET : AF_INET6,
      dstLen: prefix,
      srcLen: 0,
      tos: 0,
      table: table > 255 ? RT_TABLE_UNSPEC : table,
      protocol: r.protocol ?? RTPROT_BOOT,
      scope: r.scope ?? (r.gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK),
      type: r.type ?? RTN_UNICAST,
      flags: r.onlink ? RTNH_F_ONLINK : 0,
    },
    attrs,
  });
}

/**
 * RTM_GETROUTE dump payload; with strict checking the kernel filters by table, oif and protocol
 * (rtm_protocol in the header, as `ip route show proto N` sends it).
 */
export function buildRouteDump(filter: { family?: 4 | 6; table?: number; oif?: number; protocol?: number } = {}): Buffer {
  const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : 0;
  const attrs: Attr[] = [];
  if (filter.table !== undefined) attrs.push(nla.u32(RTA_TABLE, filter.table));
  if (filter.oif !== undefined) attrs.push(nla.u32(RTA_OIF, filter.oif));
  return encodeRouteMessage({
    info: { family, dstLen: 0, srcLen: 0, tos: 0, table: 0, protocol: filter.protocol ?? 0, scope: 0, type: 0, flags: 0 },
    attrs,
  });
}

// Typed route operations over a NetlinkSocket: add, delete, list, with metrics and tables.
import type { NetlinkSocket } from './socket.ts';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE, RT_TABLE_MAIN } from './constants.ts';
import { buildRoute, buildRouteDump, decodeRouteMessage, routeFromMessage, type Route } from './route-codec.ts';

export type { Route } from './route-codec.ts';

type RouteSpec = Omit<Route, 'family'> & { family?: 4 | 6 };

const describe = (r: RouteSpec) => `${r.dst}${r.gw ? ` via ${r.gw}` : ''}${r.oif !== undefined ? ` oif ${r.oif}` : ''}`;

/** Adds a route; EEXIST when an equal one exists (unless `replace`). */
export function addRoute(sock: NetlinkSocket, r: RouteSpec, opts: { replace?: boolean } = {}): void {
  const flags = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  sock.request(RTM_NEWROUTE, flags, buildRoute(r), { object: describe(r) });
}

export function deleteRoute(sock: NetlinkSocket, r: RouteSpec): void {
  sock.request(RTM_DELROUTE, 0, buildRoute(r), { object: describe(r) });
}

/** Lists routes of one family, filtered in the kernel by table (default main) and oif. */
export function listRoutes(sock: NetlinkSocket, filter: { family?: 4 | 6; table?: number; oif?: number } = {}): Route[] {
  const table = filter.table ?? RT_TABLE_MAIN;
  return sock
    .dump(RTM_GETROUTE, buildRouteDump({ ...filter, table }))
    .map((m) => routeFromMessage(decodeRouteMessage(m.payload)))
    .filter((r) => r.table === table && (filter.oif === undefined || r.oif === filter.oif) && (filter.family === undefined || r.family === filter.family));
}

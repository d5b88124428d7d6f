// Typed route operations over a NetlinkSocket: add, delete, list, with metrics and tables.
import type { NetlinkSocket } from './socket.ts';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE, RT_SCOPE_NOWHERE, RT_TABLE_MAIN } from './constants.ts';
import { buildRoute, buildRouteDump, decodeRouteMessage, routeFromMessage, type Route } from './route-codec.ts';

import type { NlRequest } from './request-batch.ts';

export type { Route } from './route-codec.ts';

type RouteSpec = Omit<Route, 'family'> & { family?: 4 | 6 };

const describe = (r: RouteSpec) =>
  `${r.dst}${r.gw ? ` via ${r.gw}` : ''}${r.oif !== undefined ? ` oif ${r.oif}` : ''}${r.onlink ? ' onlink' : ''}${r.protocol !== undefined ? ` proto ${r.protocol}` : ''}`;

/**
 * The request for one route, to send alone or many per datagram (request-batch.ts): `add`
 * fails with EEXIST when any route to the same destination and metric exists (anybody's);
 * `replace` swaps such a route in one step; `delete` with a protocol removes only a route of
 * that protocol.
 */
export function routeRequest(verb: 'add' | 'replace' | 'delete', r: RouteSpec): NlRequest {
  // Deleted as `ip route del` does: scope NOWHERE and type 0 match a route of any scope and type.
  if (verb === 'delete') return { type: RTM_DELROUTE, flags: 0, payload: buildRoute({ ...r, scope: RT_SCOPE_NOWHERE, type: 0 }), object: describe(r) };
  return { type: RTM_NEWROUTE, flags: NLM_F_CREATE | (verb === 'replace' ? NLM_F_REPLACE : NLM_F_EXCL), payload: buildRoute(r), object: describe(r) };
}

/** Adds a route; EEXIST when an equal one exists (unless `replace`). */
export function addRoute(sock: NetlinkSocket, r: RouteSpec, opts: { replace?: boolean } = {}): void {
  const flags = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  sock.request(RTM_NEWROUTE, flags, buildRoute(r), { object: describe(r) });
}

export function deleteRoute(sock: NetlinkSocket, r: RouteSpec): void {
  sock.request(RTM_DELROUTE, 0, buildRoute(r), { object: describe(r) });
}

/** Lists routes of one family, filtered in the kernel by table (default main), oif and protocol. */
export function listRoutes(sock: NetlinkSocket, filter: { family?: 4 | 6; table?: number; oif?: number; protocol?: number } = {}): Route[] {
  const table = filter.table ?? RT_TABLE_MAIN;
  return sock
    .dump(RTM_GETROUTE, buildRouteDump({ ...filter, table }))
    .map((m) => routeFromMessage(decodeRouteMessage(m.payload)))
    .filter(
      (r) =>
        r.table === table &&
        (filter.oif === undefined || r.oif === filter.oif) &&
        (filter.family === undefined || r.family === filter.family) &&
        (filter.protocol === undefined || r.protocol === filter.protocol),
    );
}

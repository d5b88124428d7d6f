// Typed neighbour and FDB operations over a NetlinkSocket: list the entries of one device, and
// the requests that add, replace or remove one (sent one by one, or many per datagram with
// request-batch.ts).
import type { NetlinkSocket } from './socket.ts';
import { AF_BRIDGE, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH } from './constants.ts';
import {
  buildFdb, buildNeighbour, buildNeighDump, decodeNeighMessage, fdbFromMessage, neighbourFromMessage,
  type FdbEntry, type Neighbour,
} from './neigh-codec.ts';
import type { NlRequest } from './request-batch.ts';

export type { FdbEntry, Neighbour } from './neigh-codec.ts';

/** The request that sets IP -> MAC on a device, permanent (`ip neigh replace ... nud permanent`). */
export function neighbourRequest(verb: 'add' | 'replace' | 'delete', n: { index: number; ip: string; mac?: string }): NlRequest {
  const object = `${n.ip}${n.mac ? ` lladdr ${n.mac}` : ''} ifindex ${n.index}`;
  if (verb === 'delete') return { type: RTM_DELNEIGH, flags: 0, payload: buildNeighbour(n), object };
  return { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | (verb === 'replace' ? NLM_F_REPLACE : NLM_F_EXCL), payload: buildNeighbour(n), object };
}

/** The request that sets MAC -> underlay IP on a vxlan device (`bridge fdb replace ... self permanent`). */
export function fdbRequest(verb: 'add' | 'replace' | 'delete', e: { index: number; mac: string; dst?: string }): NlRequest {
  const object = `fdb ${e.mac}${e.dst ? ` dst ${e.dst}` : ''} ifindex ${e.index}`;
  if (verb === 'delete') return { type: RTM_DELNEIGH, flags: 0, payload: buildFdb(e), object };
  return { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | (verb === 'replace' ? NLM_F_REPLACE : NLM_F_EXCL), payload: buildFdb(e), object };
}

/** Neighbour entries of one family on one device. */
export function listNeighbours(sock: NetlinkSocket, filter: { family: 4 | 6; index: number }): Neighbour[] {
  return sock
    .dump(RTM_GETNEIGH, buildNeighDump(filter))
    .map((m) => decodeNeighMessage(m.payload))
    .filter((m) => m.info.family !== AF_BRIDGE)
    .map(neighbourFromMessage)
    .filter((n) => n.index === filter.index);
}

/** FDB entries of one device (for a vxlan device: MAC -> remote underlay IP). */
export function listFdb(sock: NetlinkSocket, index: number): FdbEntry[] {
  return sock
    .dump(RTM_GETNEIGH, buildNeighDump({ family: 'bridge', index }))
    .map((m) => decodeNeighMessage(m.payload))
    .filter((m) => m.info.family === AF_BRIDGE)
    .map(fdbFromMessage)
    .filter((e) => e.index === index);
}

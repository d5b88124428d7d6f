// Typed address operations over a NetlinkSocket: add, delete, list (IPv4 and IPv6).
import type { NetlinkSocket } from './socket.ts';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR } from './constants.ts';
import { addressFromMessage, buildAddr, buildAddrDump, decodeAddrMessage, type Address, type AddrSpec } from './addr-codec.ts';

import type { NlRequest } from './request-batch.ts';

export type { Address, AddrSpec } from './addr-codec.ts';

/** The request adding (EEXIST when present) or removing one address, to send in a batch. */
export function addressRequest(verb: 'add' | 'delete', a: AddrSpec): NlRequest {
  const object = `${a.cidr} on ifindex ${a.index}`;
  if (verb === 'delete') return { type: RTM_DELADDR, flags: 0, payload: buildAddr(a), object };
  return { type: RTM_NEWADDR, flags: NLM_F_CREATE | NLM_F_EXCL, payload: buildAddr(a), object };
}

/** Adds an address; EEXIST when it is already there (unless `replace`). */
export function addAddress(sock: NetlinkSocket, a: AddrSpec, opts: { replace?: boolean } = {}): void {
  const flags = NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL);
  sock.request(RTM_NEWADDR, flags, buildAddr(a), { object: `${a.cidr} on ifindex ${a.index}` });
}

export function deleteAddress(sock: NetlinkSocket, a: AddrSpec): void {
  sock.request(RTM_DELADDR, 0, buildAddr(a), { object: `${a.cidr} on ifindex ${a.index}` });
}

/** Lists addresses, optionally of one family and one link (filtered in the kernel). */
export function listAddresses(sock: NetlinkSocket, filter: { family?: 4 | 6; index?: number } = {}): Address[] {
  return sock
    .dump(RTM_GETADDR, buildAddrDump(filter))
    .map((m) => addressFromMessage(decodeAddrMessage(m.payload)))
    .filter((a) => (filter.index === undefined || a.index === filter.index) && (filter.family === undefined || a.family === filter.family));
}

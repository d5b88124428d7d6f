// Small constructors for the libnftables JSON schema (see libnftables-json(5)): commands,
// expressions and statements, so the builders read like the rules they make.
import type { Prefix } from './addr.ts';

/** One command of a transaction, e.g. `{add: {rule: {...}}}`. */
export type NftCommand = Record<string, unknown>;
export type Json = unknown;

export const payload = (protocol: string, field: string): Json => ({ payload: { protocol, field } });
export const meta = (key: string): Json => ({ meta: { key } });
export const ct = (key: string): Json => ({ ct: { key } });
export const concat = (...parts: Json[]): Json => ({ concat: parts });
export const prefix = (p: Prefix): Json => ({ prefix: { addr: p.addr, len: p.len } });
export const anonSet = (items: Json[]): Json => ({ set: items });
export const setRef = (name: string): string => `@${name}`;

/** `left op right`; `in` is how nft writes a bitmask test such as `ct status dnat`. */
export const match = (left: Json, op: '==' | '!=' | 'in', right: Json): Json => ({ match: { op, left, right } });

/** `fib daddr type local`: the destination is one of this host's addresses. */
export const fibDaddrLocal: Json = match({ fib: { result: 'type', flags: ['daddr'] } }, '==', 'local');

export const accept: Json = { accept: null };
export const masquerade: Json = { masquerade: null };

/** `dnat ip to <key> map @addrs : <key> map @ports`. */
export const dnatMaps = (family: 'ip' | 'ip6', key: Json, addrMap: string, portMap: string): Json => ({
  dnat: { family, addr: { map: { key, data: setRef(addrMap) } }, port: { map: { key, data: setRef(portMap) } } },
});

// Address helpers for the nft builders: family detection, canonical text, CIDR to network prefix.
import { isIPv4, isIPv6 } from '../netlink/ip-text.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';

export type IpFamily = 4 | 6;

/** A CIDR split into its masked network address and prefix length, as nft's `prefix` wants. */
export interface Prefix {
  family: IpFamily;
  addr: string;
  len: number;
}

/** 4, 6, or throws: `10.0.0.1` -> 4. */
export function familyOf(addr: string): IpFamily {
  if (isIPv4(addr)) return 4;
  if (isIPv6(addr)) return 6;
  throw new CniError(ErrorCode.InvalidConfig, `invalid IP address "${addr}"`);
}

/**
 * The text nft prints for an address, so that what we build compares equal to what we list:
 * IPv6 lower-case and zero-compressed (`fd00:0::0002` -> `fd00::2`). The WHATWG URL parser
 * serialises IPv6 hosts the way inet_ntop does (RFC 5952).
 */
export function canonicalAddr(addr: string): string {
  if (familyOf(addr) === 4) return addr;
  return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
}

/** `10.88.0.7/16` -> `{family: 4, addr: '10.88.0.0', len: 16}` (host bits cleared). */
export function parsePrefix(cidr: string): Prefix {
  const slash = cidr.indexOf('/');
  const addr = slash < 0 ? cidr : cidr.slice(0, slash);
  const family = familyOf(addr);
  const bits = family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(bits) : cidr.slice(slash + 1);
  const len = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || len > bits) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid prefix length in "${cidr}"`);
  }
  const value = toBigInt(addr, family);
  const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
  return { family, addr: fromBigInt(value & mask, family), len };
}

/** `10.88.0.7/16` -> `10.88.0.7`; a bare address is returned as it is (canonical). */
export function addrOfCidr(cidr: string): string {
  const slash = cidr.indexOf('/');
  return canonicalAddr(slash < 0 ? cidr : cidr.slice(0, slash));
}

function toBigInt(addr: string, family: IpFamily): bigint {
  if (family === 4) {
    return addr.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  // The canonical text has hex groups only (no dotted quad) and at most one "::".
  const text = canonicalAddr(addr);
  const [head, tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function fromBigInt(value: bigint, family: IpFamily): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  return canonicalAddr(groups.join(':'));
}

// Address helpers for the nft builders: family, canonical text, CIDR to network prefix.
import { canonicalIp, formatIp, networkOf, parseCidr, parseIp } from '../base/ip-math.ts';
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
  const ip = parseIp(addr);
  if (!ip) throw new CniError(ErrorCode.InvalidConfig, `invalid IP address "${addr}"`);
  return ip.family;
}

/**
 * The text nft prints for an address, so that what we build compares equal to what we list:
 * IPv6 lower-case and zero-compressed (`fd00:0::0002` -> `fd00::2`), as inet_ntop (RFC 5952).
 */
export function canonicalAddr(addr: string): string {
  const text = canonicalIp(addr);
  if (text === undefined) throw new CniError(ErrorCode.InvalidConfig, `invalid IP address "${addr}"`);
  return text;
}

/** `10.88.0.7/16` -> `{family: 4, addr: '10.88.0.0', len: 16}` (host bits cleared). */
export function parsePrefix(cidr: string): Prefix {
  const c = parseCidr(cidr.includes('/') ? cidr : `${cidr}/${familyOf(cidr) === 4 ? 32 : 128}`);
  if (!c) throw new CniError(ErrorCode.InvalidConfig, `invalid prefix "${cidr}"`);
  return { family: c.ip.family, addr: formatIp(networkOf(c)), len: c.prefix };
}

/** `10.88.0.7/16` -> `10.88.0.7`; a bare address is returned as it is (canonical). */
export function addrOfCidr(cidr: string): string {
  const slash = cidr.indexOf('/');
  return canonicalAddr(slash < 0 ? cidr : cidr.slice(0, slash));
}

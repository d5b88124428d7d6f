// IPv4/IPv6 address math over BigInt for the CNI hot path: parse (behind ip-syntax.ts, Go's
// rules), format canonically, prefixes, containment, overlap, offsets. Pure.
//
// Why this is hand-written and not ip-cidr (which base/cidr.ts wraps for everything off the
// hot path): every ADD and DEL parses the IPAM config and every ADD allocates, in a process
// that has just started, where ip-address 9 (ip-cidr 4 requires it: ip-address 10 renamed
// bigInteger()/fromBigInteger(), which ip-cidr calls) computes with bit strings, jsbn and
// sprintf-js. Measured on the startup-snapshot executable, each variant compiled in by the
// warm-up, PIER_TRACE phases of a dual-stack bare ADD (v4 /16 + v6 /64), p10 of 30 interleaved
// runs on the shared 2-core machine (medians noisier, same direction), this module vs the same
// code over ip-cidr: IPAM config parse ("ctx ready") 0.72 vs 3.14 ms; allocation ("add: ipam")
// 1.73 vs 4.61 ms; the NAT plan's subnets ("add: nat started") 0.07 vs 0.74 ms; DEL's config
// parse 0.72 vs 3.01 ms. That is ~5.5 ms more per ADD and ~2.3 ms per DEL, on a bare ADD of
// ~35 ms. Traced inside one ADD: `new IPCIDR()` 0.25-0.6 ms each, an offset through
// `toArray({from})` 0.06-0.3 ms, `new Address6()` 0.1 ms; ip-address for parsing alone, with
// the math here, still left the config parse ~0.5 ms slower. base/cidr.test.ts holds this
// module to ip-cidr on the same inputs, so the library stays the reference for it.
import { ipTextFamily, splitCidrText } from './ip-syntax.ts';

export type Family = 4 | 6;

/** One address as a number, with its family (the number alone cannot say ::a from 0.0.0.10). */
export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

/** A prefix: `ip` is the address as written (host bits may be set; see `hasHostBits`). */
export interface Cidr {
  readonly ip: Ip;
  readonly prefix: number;
}

export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

function v4Value(s: string): bigint {
  let v = 0n;
  for (const p of s.split('.')) v = (v << 8n) | BigInt(Number(p));
  return v;
}

/** The value of a text ip-syntax.ts accepted as IPv6. */
function v6Value(s: string): bigint {
  let text = s;
  let tail: bigint | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    // An embedded IPv4 tail (64:ff9b::1.2.3.4) counts as two groups.
    tail = v4Value(s.slice(lastColon + 1));
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const gap = text.indexOf('::');
  const split = (h: string) => (h === '' ? [] : h.split(':'));
  const left = split(gap < 0 ? text : text.slice(0, gap));
  const right = gap < 0 ? [] : split(text.slice(gap + 2));
  let v = 0n;
  for (const g of left) v = (v << 16n) | BigInt(parseInt(g, 16));
  v <<= 16n * BigInt(8 - left.length - right.length);
  for (const g of right) v = (v << 16n) | BigInt(parseInt(g, 16));
  return tail === undefined ? v : (v & ~0xffffffffn) | tail;
}

/** Whether an IPv6 value lies in ::ffff:0:0/96, which Go's net.IP takes for IPv4. */
function isV4Mapped(value: bigint): boolean {
  return value >> 32n === 0xffffn;
}

function ipOf(text: string, family: 0 | 4 | 6): Ip | undefined {
  if (family === 4) return { family, value: v4Value(text) };
  if (family !== 6) return undefined;
  const value = v6Value(text);
  return isV4Mapped(value) ? undefined : { family, value };
}

/** Parses a bare address by Go's rules; undefined when it is none, or IPv4-mapped IPv6. */
export function parseIp(s: string): Ip | undefined {
  return ipOf(s, ipTextFamily(s));
}

/** Parses `ip/prefix` by Go's rules (host bits may be set); undefined when it is none. */
export function parseCidr(s: string): Cidr | undefined {
  const parts = splitCidrText(s);
  const ip = parts && ipOf(parts.ip, parts.family);
  return ip && { ip, prefix: parts.prefix };
}

/** Why `s` is not the address or prefix Pier expects, for an error message. */
export function notAnIpReason(s: string, expected: 'an IP address' | 'an ip/prefix'): string {
  const text = s.split('/')[0];
  if (ipTextFamily(text) === 6 && isV4Mapped(v6Value(text))) {
    return 'is an IPv4-mapped IPv6 address (::ffff:a.b.c.d): write the IPv4 address itself';
  }
  return `is not ${expected}`;
}

/** RFC 5952 text of eight 16-bit groups: lowercase, longest run of zero groups (>= 2) as `::`, the first on a tie. */
export function formatV6Groups(groups: ArrayLike<number>): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = Array.from(groups, (g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6. */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
  }
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn);
  return formatV6Groups(groups);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.ip)}/${c.prefix}`;
}

/** Canonical text of a bare address, or undefined when it is not one. */
export function canonicalIp(s: string): string | undefined {
  const ip = parseIp(s);
  return ip && formatIp(ip);
}

function hostMask(c: Cidr): bigint {
  return (1n << BigInt(bitsOf(c.ip.family) - c.prefix)) - 1n;
}

export function networkOf(c: Cidr): Ip {
  return { family: c.ip.family, value: c.ip.value & ~hostMask(c) };
}

/** The highest address of the prefix (the IPv4 broadcast). */
export function lastOf(c: Cidr): Ip {
  return { family: c.ip.family, value: networkOf(c).value | hostMask(c) };
}

export function hasHostBits(c: Cidr): boolean {
  return (c.ip.value & hostMask(c)) !== 0n;
}

export function contains(c: Cidr, ip: Ip): boolean {
  return ip.family === c.ip.family && (ip.value & ~hostMask(c)) === networkOf(c).value;
}

/** Whether two prefixes share an address: they agree on the shorter prefix (never across families). */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a.prefix <= b.prefix ? a : b, (a.prefix <= b.prefix ? b : a).ip);
}

export function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** `ip + n` (n may be negative); the caller keeps it inside a prefix. */
export function addIp(ip: Ip, n: bigint): Ip {
  return { family: ip.family, value: ip.value + n };
}

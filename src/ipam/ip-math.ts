// IPv4/IPv6 address math over BigInt: parse, format canonically, subnets and offsets. Pure.
import { bytesToIp } from '../netlink/ip-bytes.ts';

export type Family = 4 | 6;

/** One address as a number, with its family (the number alone cannot say ::a from 0.0.0.10). */
export interface Ip {
  readonly family: Family;
  readonly value: bigint;
}

/** A prefix: `network` is the address as written (host bits may be set; see `hasHostBits`). */
export interface Cidr {
  readonly ip: Ip;
  readonly prefix: number;
}

export function bitsOf(family: Family): number {
  return family === 4 ? 32 : 128;
}

const V4_PART = /^(0|[1-9][0-9]{0,2})$/;

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    // Leading zeros are refused: inet_aton reads them as octal, Go's parser refuses them.
    if (!V4_PART.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (s.includes('%')) return undefined; // zones have no place in IPAM
  let head = s;
  let tail4: bigint | undefined;
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
  const lastColon = s.lastIndexOf(':');
  if (lastColon >= 0 && s.slice(lastColon + 1).includes('.')) {
    tail4 = parseV4(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    head = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const group = /^[0-9a-fA-F]{1,4}$/;
  const split = (h: string) => (h === '' ? [] : h.split(':'));
  const left = split(halves[0]);
  const right = halves.length === 2 ? split(halves[1]) : [];
  if (![...left, ...right].every((g) => group.test(g))) return undefined;
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  if (tail4 !== undefined) v = (v & ~0xffffffffn) | tail4;
  return v;
}

/** Parses a bare address; undefined when it is not one. */
export function parseIp(s: string): Ip | undefined {
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { family: 4, value: v };
}

/** Parses `ip/prefix`; undefined when it is not one. */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > bitsOf(ip.family)) return undefined;
  return { ip, prefix };
}

/** RFC 5952 text: lowercase, longest run of zero groups (>= 2) compressed, first one on ties. */
export function formatIp(ip: Ip): string {
  if (ip.family === 4) {
    const v = Number(ip.value);
    return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  }
  const bytes = Buffer.alloc(16);
  bytes.writeBigUInt64BE(ip.value >> 64n, 0);
  bytes.writeBigUInt64BE(ip.value & 0xffffffffffffffffn, 8);
  return bytesToIp(bytes);
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

export function sameIp(a: Ip, b: Ip): boolean {
  return a.family === b.family && a.value === b.value;
}

/** `ip + n` (n may be negative); the caller keeps it inside a prefix. */
export function addIp(ip: Ip, n: bigint): Ip {
  return { family: ip.family, value: ip.value + n };
}

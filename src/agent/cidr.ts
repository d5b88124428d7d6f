// CIDR math for the agent over the strict parser of src/base/cidr.ts (Go's rules, as the
// reference plugins parse; ip-cidr for the arithmetic; no zones; IPv4-mapped IPv6 refused),
// with a reason for each refusal, and each network's first and last address as big integers, so
// that admission compares hundreds of networks with plain integer comparisons (and never across
// families: ip-cidr's own `contains` answers yes for `fd00::/0` and 10.0.0.1).
import { hasHostBits, parseCidrStrict, parseIpStrict } from '../base/cidr.ts';
import { ipTextFamily, splitCidrText } from '../base/ip-syntax.ts';
import { bytesToIp } from '../netlink/ip-bytes.ts';

export type Family = 4 | 6;

/** A parsed network: canonical text (RFC 5952 for IPv6), family, prefix, first and last address. */
export interface Cidr {
  text: string;
  family: Family;
  prefix: number;
  /** The network address, canonical text. */
  network: string;
  first: bigint;
  last: bigint;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Every pass parses the same few hundred texts again (the Nodes rarely change): results are
 * kept, up to a bound that only a hostile stream of distinct texts could reach.
 */
const MEMO_LIMIT = 20_000;
function memo<T>(fn: (text: string) => T): (text: string) => T {
  const cache = new Map<string, T>();
  return (text) => {
    let v = cache.get(text);
    if (v === undefined && !cache.has(text)) {
      if (cache.size >= MEMO_LIMIT) cache.clear();
      v = fn(text);
      cache.set(text, v);
    }
    return v as T;
  };
}

/** `10.1.2.3` -> its canonical text and value; undefined when it is not an address. */
export const parseIp = memo(parseIpText);

function parseIpText(text: string): { text: string; family: Family; value: bigint } | undefined {
  const ip = parseIpStrict(text);
  return ip && { text: ip.text, family: ip.family, value: BigInt(ip.address.bigInteger()) };
}

/**
 * Parses a network such as a Node's podCIDR: an address, `/`, a decimal prefix within the
 * family's length, and no host bits set. IPv4-mapped IPv6 is refused (it would route as IPv4).
 */
export function parseCidr(text: string): Parsed<Cidr> {
  if (typeof text !== 'string') return { ok: false, error: 'is not a string' };
  return parseCidrMemo(text);
}

const parseCidrMemo = memo(parseCidrText);

function parseCidrText(text: string): Parsed<Cidr> {
  const c = parseCidrStrict(text);
  if (!c) return { ok: false, error: `${JSON.stringify(text)} ${whyNotCidr(text)}` };
  const first = c.range.start<bigint>({ type: 'bigInteger' });
  const last = c.range.end<bigint>({ type: 'bigInteger' });
  if (hasHostBits(c)) return { ok: false, error: `${JSON.stringify(text)} has host bits set (the network is ${c.network})` };
  return { ok: true, value: { text: c.network, family: c.family, prefix: c.prefix, network: c.network.split('/')[0], first, last } };
}

/** Why the strict parser refused `text`, in words. */
function whyNotCidr(text: string): string {
  const slash = text.indexOf('/');
  if (slash < 0) return 'has no /prefix';
  const family = ipTextFamily(text.slice(0, slash));
  if (family === 0) return 'is not an IP network';
  if (!splitCidrText(text)) return `has a bad prefix length (0-${family === 4 ? 32 : 128})`;
  return 'is IPv4-mapped IPv6';
}

/** The subnet of an interface address with its prefix (`203.0.113.7/24` -> 203.0.113.0/24). */
export function subnetOf(addressCidr: string): Cidr | undefined {
  const [addr, prefixText] = addressCidr.split('/');
  const ip = parseIp(addr);
  const bits = ip?.family === 4 ? 32 : 128;
  const prefix = Number(prefixText);
  if (!ip || !/^[0-9]{1,3}$/.test(prefixText ?? '') || prefix > bits) return undefined;
  const hostBits = BigInt(bits - prefix);
  const first = (ip.value >> hostBits) << hostBits;
  const network = fromValue(first, ip.family);
  return { text: `${network}/${prefix}`, family: ip.family, prefix, network, first, last: first + (1n << hostBits) - 1n };
}

function fromValue(v: bigint, family: Family): string {
  const hex = v.toString(16).padStart(family === 4 ? 8 : 32, '0');
  return bytesToIp(Buffer.from(hex, 'hex'));
}

/** The address `offset` after a network's first one (offset 0: the network address). */
export function addressAt(c: Cidr, offset: bigint): string {
  return fromValue(c.first + offset, c.family);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

/** `outer` holds all of `inner`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.first <= inner.first && inner.last <= outer.last;
}

export function containsIp(c: Cidr, ip: string): boolean {
  const a = parseIp(ip);
  return a !== undefined && a.family === c.family && c.first <= a.value && a.value <= c.last;
}

/**
 * The smallest list of the given networks that covers the same addresses with no two
 * overlapping: a network inside another is dropped (CIDRs either nest or are disjoint). Sorted by
 * family, then address. This is what an interval set without auto-merge accepts.
 */
export function coverOf(cidrs: readonly Cidr[]): Cidr[] {
  // By family, then first address, the larger network first where two start together.
  const sorted = [...cidrs].sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : a.prefix - b.prefix));
  const out: Cidr[] = [];
  for (const c of sorted) {
    const prev = out.at(-1);
    if (prev && containsCidr(prev, c)) continue;
    out.push(c);
  }
  return out;
}

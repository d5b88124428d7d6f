// CIDR math for the agent: strict parsing of what the API hands over, overlap and containment.
// ip-cidr does the arithmetic (network and last address as big integers); the text is checked
// by Pier's own address grammar first, because ip-cidr is lenient where the API's data must not
// be: it takes host bits, zones (`fd00::1%eth0/64`) and IPv4-mapped IPv6 (read as IPv4), and
// its `contains` answers across families (`fd00::/0` contains 10.0.0.1).
import IPCIDR from 'ip-cidr';
import { isIPv4Text as isIPv4, isIPv6Text as isIPv6 } from '../base/ip-syntax.ts';
import { bytesToIp, ipToBytes } from '../netlink/ip-bytes.ts';

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

/** The family of an address text, or undefined when it is not one (no zones, no brackets). */
export function ipFamily(text: string): Family | undefined {
  if (isIPv4(text)) return 4;
  if (isIPv6(text) && !text.includes('%')) return 6;
  return undefined;
}

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
  const family = ipFamily(text);
  if (!family) return undefined;
  const bytes = ipToBytes(text);
  return { text: bytesToIp(bytes), family, value: BigInt(`0x${bytes.toString('hex')}`) };
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
  const slash = text.indexOf('/');
  if (slash < 0) return { ok: false, error: `${JSON.stringify(text)} has no /prefix` };
  const addr = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const family = ipFamily(addr);
  if (!family) return { ok: false, error: `${JSON.stringify(text)} is not an IP network` };
  if (family === 6 && addr.includes('.')) return { ok: false, error: `${JSON.stringify(text)} is IPv4-mapped IPv6` };
  const max = family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > max) {
    return { ok: false, error: `${JSON.stringify(text)} has a bad prefix length (0-${max})` };
  }
  const prefix = Number(prefixText);
  const range = new IPCIDR(text);
  const first = range.start<bigint>({ type: 'bigInteger' });
  const last = range.end<bigint>({ type: 'bigInteger' });
  const network = fromValue(first, family);
  const own = parseIp(addr)!;
  if (own.value !== first) return { ok: false, error: `${JSON.stringify(text)} has host bits set (the network is ${network}/${prefix})` };
  return { ok: true, value: { text: `${network}/${prefix}`, family, prefix, network, first, last } };
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

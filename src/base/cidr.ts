// CIDR prefixes over ip-cidr (and the ip-address it builds on), for code off the CNI hot path:
// the CLI's route clash checks and the cluster agent (node CIDRs inside the cluster CIDR, node
// CIDRs that overlap, a node CIDR that covers an address). Pure. Every text meets Go's rules
// first (ip-syntax.ts): ip-address alone takes zones, and ip-cidr reads any IPv6 text with a
// dotted tail as the IPv4 address after its last colon (cidr.test.ts shows both). IPv4-mapped
// IPv6 (`::ffff:10.0.0.1`, in any spelling) is refused: Go's net.IP takes it for IPv4.
// The CNI hot path uses ip-math.ts instead: in a process that has just started, ip-cidr made
// one ADD several ms slower (ip-math.ts's header has the measurement); cidr.test.ts checks
// that the two agree.
import IPCIDR from 'ip-cidr';
import { Address4, Address6 } from 'ip-address';
import { ipTextFamily, splitCidrText } from './ip-syntax.ts';

export type Family = 4 | 6;

/** An address that passed the strict parse. */
export interface StrictIp {
  readonly family: Family;
  /** Canonical text: dotted quad, or RFC 5952 IPv6 (ip-address's correctForm). */
  readonly text: string;
  readonly address: Address4 | Address6;
}

/** A prefix that passed the strict parse: `10.0.0.7/24` (host bits may be set; see hasHostBits). */
export interface StrictCidr {
  readonly family: Family;
  readonly prefix: number;
  /** The address as written (canonical text). */
  readonly ip: StrictIp;
  /** `network/prefix`, canonical: `10.0.0.0/24`. */
  readonly network: string;
  /** ip-cidr's object for the network. */
  readonly range: IPCIDR;
}

let mappedBlock: IPCIDR | undefined;

function strictAddress(text: string, family: 0 | 4 | 6): StrictIp | undefined {
  if (family === 0) return undefined;
  const address = family === 4 ? new Address4(text) : new Address6(text);
  mappedBlock ??= new IPCIDR('::ffff:0:0/96');
  if (family === 6 && mappedBlock.contains(address)) return undefined;
  return { family, text: address.correctForm(), address };
}

/** A bare address by Go's net.ParseIP rules, IPv4-mapped refused; undefined when it is none. */
export function parseIpStrict(text: string): StrictIp | undefined {
  return strictAddress(text, ipTextFamily(text));
}

/** `ip/prefix` by Go's net.ParseCIDR rules, IPv4-mapped refused; undefined when it is none. */
export function parseCidrStrict(text: string): StrictCidr | undefined {
  const parts = splitCidrText(text);
  const ip = parts && strictAddress(parts.ip, parts.family);
  if (!parts || !ip) return undefined;
  // ip-cidr is handed canonical text only (no dotted tail, no leading zeros in the prefix).
  const range = new IPCIDR(`${ip.text}/${parts.prefix}`);
  const start = range.start<Address4 | Address6>({ type: 'addressObject' });
  return { family: parts.family, prefix: parts.prefix, ip, network: `${start.correctForm()}/${parts.prefix}`, range };
}

/** Whether the address was written with host bits set (`10.0.0.7/24`). */
export function hasHostBits(c: StrictCidr): boolean {
  return c.network !== `${c.ip.text}/${c.prefix}`;
}

/** Whether `ip` lies inside the prefix (never across families). */
export function containsIp(c: StrictCidr, ip: StrictIp): boolean {
  return c.family === ip.family && c.range.contains(ip.address);
}

/** Whether every address of `inner` lies inside `outer`: a node CIDR inside the cluster CIDR. */
export function covers(outer: StrictCidr, inner: StrictCidr): boolean {
  // ip-cidr's start address carries the prefix length, and contains() compares lengths too.
  return outer.family === inner.family && outer.range.contains(inner.range.start<Address4 | Address6>({ type: 'addressObject' }));
}

/** Whether two prefixes share an address; for prefixes, that is one covering the other. */
export function overlaps(a: StrictCidr, b: StrictCidr): boolean {
  return covers(a, b) || covers(b, a);
}

/** The number of addresses in the prefix (2n ** BigInt(bits - prefix)). */
export function sizeOf(c: StrictCidr): bigint {
  return c.range.size as bigint;
}

/**
 * The address `n` places after the network address (ip-cidr's offsets); a negative `n` counts
 * back from the end, -1 being the last address. Undefined outside the prefix.
 */
export function ipAt(c: StrictCidr, n: bigint): StrictIp | undefined {
  const from = n >= 0n ? n : sizeOf(c) + n;
  if (from < 0n || from >= sizeOf(c)) return undefined;
  const [address] = c.range.toArray({ type: 'addressObject', from, limit: 1n }) as unknown as (Address4 | Address6)[];
  return { family: c.family, text: address.correctForm(), address };
}

// Address helpers the wiring needs, on `ip/prefix` text: same-subnet tests and network addresses.
import { type Cidr, formatCidr, networkOf as networkIp, overlaps, parseCidr } from '../base/ip-math.ts';

/** `10.1.2.3/24`, or a bare address as its full-length prefix; throws on anything else. */
function cidrOf(text: string): Cidr {
  const c = parseCidr(text) ?? (!text.includes('/') ? parseCidr(`${text}/${text.includes(':') ? 128 : 32}`) : undefined);
  if (!c) throw new Error(`not an ip/prefix: ${JSON.stringify(text)}`);
  return c;
}

/** True when both CIDRs are of one family and share the shorter of their prefixes. */
export function sameSubnet(a: string, b: string): boolean {
  return overlaps(cidrOf(a), cidrOf(b));
}

/** `10.1.2.3/24` -> `10.1.2.0/24`. */
export function networkOf(cidr: string): string {
  const c = cidrOf(cidr);
  return formatCidr({ ip: networkIp(c), prefix: c.prefix });
}

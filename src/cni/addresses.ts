// Text checks for the addresses found in CNI input: IPs, CIDRs ("ip/prefix") and MAC addresses.
import { parseIp } from '../base/ip-math.ts';
import { splitCidrText } from '../base/ip-syntax.ts';

/**
 * 4 or 6 for an IP address, 0 for anything else: Go's net.ParseIP rules (no leading zeros, no
 * zone suffix), and no IPv4-mapped IPv6, which Go would read as the IPv4 address.
 */
export function ipFamily(text: string): 0 | 4 | 6 {
  return parseIp(text)?.family ?? 0;
}

/** An "ip/prefix" string split up, or undefined when it is not one. Host bits may be set. */
export function parseCidr(text: string): { ip: string; prefix: number; family: 4 | 6 } | undefined {
  const parts = splitCidrText(text);
  return parts && ipFamily(parts.ip) !== 0 ? parts : undefined;
}

export function isCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/** A bare IP or an "ip/prefix": the forms a runtime may use to request an address. */
export function isIpOrCidr(text: string): boolean {
  return ipFamily(text) !== 0 || isCidr(text);
}

/**
 * A 6-byte unicast MAC ("aa:bb:cc:dd:ee:ff" or with dashes) in lowercase colon form, or
 * undefined. Multicast (I/G bit set) and all-zero addresses are refused: the kernel will not
 * put them on an Ethernet interface.
 */
export function normaliseMac(text: string): string | undefined {
  if (!/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(text)) return undefined;
  const bytes = text.split(/[:-]/).map((b) => parseInt(b, 16));
  if (bytes[0] & 1) return undefined;
  if (bytes.every((b) => b === 0)) return undefined;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

// Text checks for the addresses found in CNI input: IPs, CIDRs ("ip/prefix") and MAC addresses.
import { ipVersion } from '../netlink/ip-text.ts';

/** 4 or 6 for an IP address, 0 for anything else (zone suffixes are not allowed). */
export function ipFamily(text: string): 0 | 4 | 6 {
  if (text.includes('%')) return 0;
  return ipVersion(text);
}

/** An "ip/prefix" string split up, or undefined when it is not one. Host bits may be set. */
export function parseCidr(text: string): { ip: string; prefix: number; family: 4 | 6 } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const family = ipFamily(ip);
  if (family === 0 || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { ip, prefix, family };
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

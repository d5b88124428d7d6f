// Converts IP address text to the bytes netlink carries and back (RFC 5952 text for IPv6).
// Text is parsed and formatted by base/ip-math.ts (hand-written for speed; its header says why).
import { formatV6Groups, parseIp } from '../base/ip-math.ts';
import { splitCidrText } from '../base/ip-syntax.ts';

/** `10.1.2.3` -> 4 bytes, `fd00::1` -> 16 bytes; throws on anything else. */
export function ipToBytes(text: string): Buffer {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  if (ip.family === 4) {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(Number(ip.value));
    return out;
  }
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(ip.value >> 64n, 0);
  out.writeBigUInt64BE(ip.value & 0xffffffffffffffffn, 8);
  return out;
}

/** 4 or 16 bytes -> text. */
export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length !== 16) throw new Error(`address of ${b.length} bytes`);
  const groups = new Array<number>(8);
  for (let i = 0; i < 8; i++) groups[i] = b.readUInt16BE(i * 2);
  return formatV6Groups(groups);
}

/** 4 or 6 for an address text; throws on anything else. */
export function familyOf(text: string): 4 | 6 {
  const ip = parseIp(text);
  if (!ip) throw new Error(`not an IP address: ${JSON.stringify(text)}`);
  return ip.family;
}

/** `10.1.2.3/24` -> {ip, prefix}; a bare address gets the full-length prefix. */
export function parseCidr(cidr: string): { ip: string; prefix: number; family: 4 | 6 } {
  if (!cidr.includes('/')) {
    const family = familyOf(cidr);
    return { ip: cidr, prefix: family === 4 ? 32 : 128, family };
  }
  const parts = splitCidrText(cidr);
  if (!parts) throw new Error(`not an ip/prefix: ${JSON.stringify(cidr)}`);
  familyOf(parts.ip);
  return parts;
}

/** Formats a MAC from 6 bytes: `aa:bb:cc:dd:ee:ff`. */
export function macToString(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function macToBytes(mac: string): Buffer {
  if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac)) throw new Error(`bad MAC address ${JSON.stringify(mac)}`);
  return Buffer.from(mac.split(/[:-]/).map((x) => parseInt(x, 16)));
}

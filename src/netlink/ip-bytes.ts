// Converts IP address text to the bytes netlink carries and back (RFC 5952 text for IPv6).
import { isIPv4, isIPv6 } from './ip-text.ts';

/** `10.1.2.3` -> 4 bytes, `fd00::1` -> 16 bytes; throws on anything else. */
export function ipToBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
  let text = ip.split('%')[0];
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // Embedded IPv4 (::ffff:1.2.3.4): turn it into two hex groups.
    const v4 = text.slice(lastColon + 1).split('.').map(Number);
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const left = parse(head);
  const right = rest === undefined ? [] : parse(rest);
  const groups = rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  if (tail.length) groups.splice(6, 2, ...tail);
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** 4 or 16 bytes -> text. */
export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) throw new Error(`address of ${b.length} bytes`);
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
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
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function familyOf(ip: string): 4 | 6 {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  throw new Error(`not an IP address: ${JSON.stringify(ip)}`);
}

/** `10.1.2.3/24` -> {ip, prefix}; a bare address gets the full-length prefix. */
export function parseCidr(cidr: string): { ip: string; prefix: number; family: 4 | 6 } {
  const [ip, p] = cidr.split('/');
  const family = familyOf(ip);
  const max = family === 4 ? 32 : 128;
  const prefix = p === undefined ? max : Number(p);
  if (!/^\d+$/.test(p ?? String(max)) || prefix > max) throw new Error(`bad prefix length in ${JSON.stringify(cidr)}`);
  return { ip, prefix, family };
}

/** Formats a MAC from 6 bytes: `aa:bb:cc:dd:ee:ff`. */
export function macToString(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export function macToBytes(mac: string): Buffer {
  if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(mac)) throw new Error(`bad MAC address ${JSON.stringify(mac)}`);
  return Buffer.from(mac.split(/[:-]/).map((x) => parseInt(x, 16)));
}

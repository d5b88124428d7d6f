// Small pure address helpers the wiring needs: same-subnet tests and network addresses.
import { bytesToIp, ipToBytes, parseCidr } from '../netlink/ip-bytes.ts';

function maskedEqual(a: Buffer, b: Buffer, prefix: number): boolean {
  if (a.length !== b.length) return false;
  const full = Math.floor(prefix / 8);
  if (!a.subarray(0, full).equals(b.subarray(0, full))) return false;
  const rest = prefix % 8;
  if (!rest) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return (a[full] & m) === (b[full] & m);
}

/** True when both CIDRs are of one family and share the shorter of their prefixes. */
export function sameSubnet(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (x.family !== y.family) return false;
  return maskedEqual(ipToBytes(x.ip), ipToBytes(y.ip), Math.min(x.prefix, y.prefix));
}

/** True when `ip` lies inside `cidr`. */
export function contains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const i = parseCidr(ip);
  return c.family === i.family && maskedEqual(ipToBytes(c.ip), ipToBytes(i.ip), c.prefix);
}

/** `10.1.2.3/24` -> `10.1.2.0/24`. */
export function networkOf(cidr: string): string {
  const { ip, prefix } = parseCidr(cidr);
  const b = ipToBytes(ip);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    b[i] &= (0xff << (8 - bits)) & 0xff;
  }
  return `${bytesToIp(b)}/${prefix}`;
}

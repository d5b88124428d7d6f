// The syntax gate in front of ip-address: which texts are IP addresses (and `ip/prefix`), by the
// rules of Go's net.ParseIP / net.ParseCIDR, which the reference plugins (host-local, bridge)
// parse configs with. ip-address on its own is looser and stricter in other places (see
// ip-syntax.test.ts and cidr.test.ts), so every text meets this gate before the library.
// Go's rules: IPv4 is four decimal parts 0-255 without leading zeros (inet_aton would read
// `010` as octal); IPv6 has hex groups of 1-4 digits, at most one `::` standing for at least
// one zero group, and an optional trailing dotted quad; no `%zone` (net.ParseIP refuses it);
// a prefix length is decimal digits up to 32 or 128 (Go accepts leading zeros there).
// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) passes this gate as Go parses it; cidr.ts refuses it.
// Hand-written because no library has Go's rules (node:net takes zones, ip-address takes zones
// and leading zeros), as a character scanner without node:net: its isIPv4/isIPv6, run 2,000
// times by the build's warm-up (src/warm-up.ts), make V8's snapshot serializer abort
// ("unreachable code"; run once, they do not), while ip-address's regexes run as often do not.

const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/** `10.1.2.3`: four decimal parts 0-255, no leading zeros, nothing else. */
export function isIPv4Text(text: string): boolean {
  let parts = 0;
  let i = 0;
  while (i <= text.length) {
    const start = i;
    let value = 0;
    while (i < text.length && isDigit(text.charCodeAt(i))) {
      value = value * 10 + text.charCodeAt(i) - 48;
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || value > 255 || (len > 1 && text.charCodeAt(start) === 48)) return false;
    parts++;
    if (i === text.length) return parts === 4;
    if (text.charCodeAt(i) !== 46 || parts === 4) return false;
    i++;
  }
  return false;
}

function isHexGroup(g: string): boolean {
  if (g.length < 1 || g.length > 4) return false;
  for (let i = 0; i < g.length; i++) if (!isHex(g.charCodeAt(i))) return false;
  return true;
}

/** `fd00::1`, `::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`; never a `%zone`. */
export function isIPv6Text(s: string): boolean {
  const gap = s.indexOf('::');
  if (gap >= 0 && s.indexOf('::', gap + 1) >= 0) return false;
  const halves = gap >= 0 ? [s.slice(0, gap), s.slice(gap + 2)] : [s];
  let groups = 0;
  for (let h = 0; h < halves.length; h++) {
    const half = halves[h];
    if (half === '') {
      if (gap < 0) return false;
      continue;
    }
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const last = h === halves.length - 1 && i === parts.length - 1;
      if (last && parts[i].includes('.')) {
        if (!isIPv4Text(parts[i])) return false;
        groups += 2;
      } else if (isHexGroup(parts[i])) {
        groups++;
      } else {
        return false;
      }
    }
  }
  // `::` stands for at least one zero group.
  return gap >= 0 ? groups <= 7 : groups === 8;
}

/** 4, 6, or 0 when Go's net.ParseIP would refuse the text. */
export function ipTextFamily(text: string): 0 | 4 | 6 {
  if (isIPv4Text(text)) return 4;
  return isIPv6Text(text) ? 6 : 0;
}

/** `ip/prefix` split up as Go's net.ParseCIDR reads it (host bits may be set); else undefined. */
export function splitCidrText(text: string): { ip: string; prefix: number; family: 4 | 6 } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = text.slice(0, slash);
  const family = ipTextFamily(ip);
  if (family === 0) return undefined;
  const bits = family === 4 ? 32 : 128;
  let prefix = 0;
  let i = slash + 1;
  if (i === text.length) return undefined;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!isDigit(c)) return undefined;
    prefix = prefix * 10 + c - 48;
    if (prefix > bits) return undefined;
  }
  return { ip, prefix, family };
}

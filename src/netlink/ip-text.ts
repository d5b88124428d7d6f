// Which IP version a text is: the same answers as node:net's isIPv4/isIPv6 (dotted quad without
// leading zeros; IPv6 with at most one `::`, an optional trailing dotted quad and an optional
// `%zone`), without node:net. That module drags net, stream and dns into the startup snapshot,
// and its address regexes, once run, make V8's snapshot serializer abort, so the build's
// warm-up (src/warm-up.ts) could not run any address code.

const isDigit = (c: number) => c >= 48 && c <= 57;
const isHex = (c: number) => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/** `10.1.2.3`: four decimal parts 0-255, no leading zeros, nothing else. */
export function isIPv4(text: string): boolean {
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

function isZone(z: string): boolean {
  if (!z.length) return false;
  for (let i = 0; i < z.length; i++) {
    const c = z.charCodeAt(i);
    // [0-9a-zA-Z.:-]
    if (!(isDigit(c) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 45 || c === 46 || c === 58)) return false;
  }
  return true;
}

/** `fd00::1`, `::ffff:1.2.3.4`, `fe80::1%eth0`. */
export function isIPv6(text: string): boolean {
  let s = text;
  const pct = s.indexOf('%');
  if (pct >= 0) {
    if (!isZone(s.slice(pct + 1))) return false;
    s = s.slice(0, pct);
  }
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
        if (!isIPv4(parts[i])) return false;
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

/** 4, 6, or 0 for neither (node:net's isIP). */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (isIPv4(text)) return 4;
  return isIPv6(text) ? 6 : 0;
}

// Round-robin walk over a range set: start after the last reserved address, wrap, skip gateways.
import type { RangeSet } from './config.ts';
import { type Ip, formatIp, parseIp } from '../base/ip-math.ts';

interface Span {
  start: bigint;
  end: bigint;
}

/**
 * Returns the first address of `set`, in host-local's order, for which `isFree` says yes:
 * from the address after `lastReserved` (or the set's first address when it is in no range)
 * through the end of its range, the following ranges, then around to where it began.
 * Addresses in `skip` (the gateways) are never offered. Undefined when none is free.
 */
export function findFreeAddress(
  set: RangeSet,
  lastReserved: string | undefined,
  skip: ReadonlySet<string>,
  isFree: (ip: string) => boolean,
): string | undefined {
  const family = set[0].family;
  const spans: Span[] = set.map((r) => ({ start: parseIp(r.rangeStart)!.value, end: parseIp(r.rangeEnd)!.value }));
  const last = lastReserved === undefined ? undefined : parseIp(lastReserved);
  let r = 0;
  let at = spans[0].start;
  if (last && last.family === family) {
    const i = spans.findIndex((s) => last.value >= s.start && last.value <= s.end);
    if (i >= 0) {
      r = i;
      at = last.value + 1n;
      if (at > spans[r].end) {
        r = (r + 1) % spans.length;
        at = spans[r].start;
      }
    }
  }
  const beginRange = r;
  const beginAt = at;
  for (;;) {
    const text = formatIp({ family, value: at } satisfies Ip);
    if (!skip.has(text) && isFree(text)) return text;
    at++;
    if (at > spans[r].end) {
      r = (r + 1) % spans.length;
      at = spans[r].start;
    }
    if (r === beginRange && at === beginAt) return undefined;
  }
}

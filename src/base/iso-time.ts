// `new Date(ms).toISOString()` without a Date: the first Date object a process makes loads the
// local time zone (ICU: /etc/localtime and a readlink per path component), ~0.16 ms of every
// plugin run, for timestamps that are UTC anyway.

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Days since 1970-01-01 -> [year, month 1-12, day 1-31] in the proleptic Gregorian calendar. */
function civil(days: number): [number, number, number] {
  // Count in 400-year eras (146,097 days each) from 0000-03-01, so that the leap day is the
  // last day of each year and months have a fixed pattern from March on.
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097; // day of era, 0..146096
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100)); // 0..365, from March 1
  const mp = Math.floor((5 * doy + 2) / 153); // 0 = March .. 11 = February
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
}

/** `2026-11-29T05:20:37.123Z` for a time in ms since the epoch (years 0-9999). */
export function isoTime(ms: number): string {
  const days = Math.floor(ms / 86400000);
  const [y, mo, d] = civil(days);
  let rest = ms - days * 86400000;
  const h = Math.floor(rest / 3600000);
  rest -= h * 3600000;
  const mi = Math.floor(rest / 60000);
  rest -= mi * 60000;
  const s = Math.floor(rest / 1000);
  return `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(rest - s * 1000, 3)}Z`;
}

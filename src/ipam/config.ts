// The `ipam` object of a network config, host-local compatible: zod shape, then host-local's checks.
import { type infer as Infer, array, gte, int, lte, object, optional, string } from 'zod/mini';
import '../zod-config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import {
  type Cidr, type Family, type Ip, addIp, bitsOf, contains, formatCidr, formatIp, hasHostBits,
  lastOf, networkOf, parseCidr, parseIp, sameIp,
} from './ip-math.ts';
import type { CniRoute } from '../base/route.ts';

export const DEFAULT_DATA_DIR = '/var/lib/pier/networks';

/** CNI's container-ID rule, also used for network names (which become directory names). */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

/** One range with every default filled in; addresses in canonical text. */
export interface IpRange {
  family: Family;
  /** `network/prefix`, e.g. `10.22.0.0/24`. */
  subnet: string;
  rangeStart: string;
  rangeEnd: string;
  gateway: string;
}

/** Ranges one address is taken from; all of one family. */
export type RangeSet = IpRange[];

export interface IpamConfig {
  /** `ipam.type` as given (Pier's own, or `host-local` for drop-in configs). */
  type?: string;
  /** The network name; the store lives at `<dataDir>/<network>`. */
  network: string;
  ranges: RangeSet[];
  routes: CniRoute[];
  dataDir: string;
  /** Read at ADD time (a missing file must not break DEL). */
  resolvConf?: string;
}

export const rangeShape = object({
  subnet: string(),
  rangeStart: optional(string()),
  rangeEnd: optional(string()),
  gateway: optional(string()),
});

const u32 = int().check(gte(0), lte(0xffffffff));

export const routeShape = object({
  dst: string(),
  gw: optional(string()),
  mtu: optional(u32),
  advmss: optional(u32),
  priority: optional(u32),
  table: optional(u32),
  scope: optional(int().check(gte(0), lte(255))),
});

// Unknown keys are tolerated (the spec requires it) and dropped.
export const ipamShape = object({
  type: optional(string()),
  ranges: optional(array(array(rangeShape))),
  subnet: optional(string()),
  rangeStart: optional(string()),
  rangeEnd: optional(string()),
  gateway: optional(string()),
  routes: optional(array(routeShape)),
  dataDir: optional(string()),
  resolvConf: optional(string()),
});

type Path = (string | number)[];

/** `['ranges', 0, 1, 'subnet']` -> `ipam.ranges[0][1].subnet`. */
function pathText(path: Path): string {
  return path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : `${s}.${p}`),
    'ipam',
  );
}

function invalid(path: Path, value: unknown, reason: string): CniError {
  return new CniError(
    ErrorCode.InvalidConfig,
    `invalid IPAM config: ${pathText(path)} ${reason}`,
    `${pathText(path)}: ${JSON.stringify(value)}`,
  );
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let v = raw;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Parses and validates the `ipam` object; throws CniError 7 naming the path and the value. */
export function parseIpamConfig(raw: unknown, networkName: string): IpamConfig {
  if (typeof networkName !== 'string' || !NAME_PATTERN.test(networkName)) {
    throw new CniError(
      ErrorCode.InvalidConfig,
      'invalid network name: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$',
      `name: ${JSON.stringify(networkName)}`,
    );
  }
  const parsed = ipamShape.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    throw invalid(path, valueAt(raw, issue.path), `is invalid: ${issue.message}`);
  }
  const c = parsed.data;

  const ranges: RangeSet[] = [];
  if (c.subnet !== undefined) {
    // host-local puts the legacy top-level range first, as its own set.
    ranges.push([canonicalRange({ subnet: c.subnet, rangeStart: c.rangeStart, rangeEnd: c.rangeEnd, gateway: c.gateway }, [])]);
  } else {
    for (const key of ['rangeStart', 'rangeEnd', 'gateway'] as const) {
      if (c[key] !== undefined) throw invalid([key], c[key], 'needs ipam.subnet (or use ipam.ranges)');
    }
  }
  (c.ranges ?? []).forEach((set, i) => {
    if (!set.length) throw invalid(['ranges', i], set, 'is an empty range set');
    ranges.push(set.map((r, j) => canonicalRange(r, ['ranges', i, j])));
  });
  if (!ranges.length) throw invalid([], raw, 'has no ranges: set ipam.ranges or ipam.subnet');
  checkFamilies(ranges, c.subnet !== undefined);
  checkOverlaps(ranges, c.subnet !== undefined);

  return {
    ...(c.type !== undefined && { type: c.type }),
    network: networkName,
    ranges,
    routes: (c.routes ?? []).map((r, i) => canonicalRoute(r, ['routes', i])),
    dataDir: checkDataDir(c.dataDir ?? DEFAULT_DATA_DIR),
    ...(c.resolvConf !== undefined && { resolvConf: checkResolvConf(c.resolvConf) }),
  };
}

/** Where the i-th set, j-th range came from in the user's config. */
function sourcePath(i: number, j: number, legacy: boolean): Path {
  if (legacy) return i === 0 ? [] : ['ranges', i - 1, j];
  return ['ranges', i, j];
}

function canonicalRange(r: Infer<typeof rangeShape>, path: Path): IpRange {
  const subnet = parseCidr(r.subnet);
  if (!subnet) throw invalid([...path, 'subnet'], r.subnet, 'is not an ip/prefix');
  if (hasHostBits(subnet)) throw invalid([...path, 'subnet'], r.subnet, `has host bits set (network is ${formatCidr({ ip: networkOf(subnet), prefix: subnet.prefix })})`);
  const bits = bitsOf(subnet.ip.family);
  // host-local refuses prefixes with no room for a gateway and a host.
  if (subnet.prefix > bits - 2) throw invalid([...path, 'subnet'], r.subnet, `is too small: /${subnet.prefix} leaves no usable addresses`);

  const network = networkOf(subnet);
  const last = lastOf(subnet);
  const usableLast = subnet.ip.family === 4 ? addIp(last, -1n) : last;
  const inSubnet = (key: 'rangeStart' | 'rangeEnd' | 'gateway'): Ip | undefined => {
    const text = r[key];
    if (text === undefined) return undefined;
    const ip = parseIp(text);
    if (!ip) throw invalid([...path, key], text, 'is not an IP address');
    if (!contains(subnet, ip)) throw invalid([...path, key], text, `is not in subnet ${r.subnet}`);
    if (sameIp(ip, network)) throw invalid([...path, key], text, 'is the network address');
    if (subnet.ip.family === 4 && sameIp(ip, last)) throw invalid([...path, key], text, 'is the broadcast address');
    return ip;
  };
  const gateway = inSubnet('gateway') ?? addIp(network, 1n);
  let start = inSubnet('rangeStart');
  if (!start) {
    start = addIp(network, 1n);
    if (sameIp(start, gateway)) start = addIp(start, 1n);
  }
  const end = inSubnet('rangeEnd') ?? usableLast;
  if (start.value > end.value) throw invalid([...path, 'rangeStart'], formatIp(start), `is after rangeEnd ${formatIp(end)}`);
  return {
    family: subnet.ip.family,
    subnet: formatCidr(subnet),
    rangeStart: formatIp(start),
    rangeEnd: formatIp(end),
    gateway: formatIp(gateway),
  };
}

function checkFamilies(sets: RangeSet[], legacy: boolean): void {
  sets.forEach((set, i) =>
    set.forEach((r, j) => {
      if (r.family !== set[0].family) {
        throw invalid([...sourcePath(i, j, legacy), 'subnet'], r.subnet, `is IPv${r.family} but range set ${i} starts with IPv${set[0].family}: a range set holds one family`);
      }
    }),
  );
}

function checkOverlaps(sets: RangeSet[], legacy: boolean): void {
  const all = sets.flatMap((set, i) => set.map((r, j) => ({ r, path: sourcePath(i, j, legacy) })));
  for (let a = 0; a < all.length; a++) {
    for (let b = a + 1; b < all.length; b++) {
      const x = all[a].r;
      const y = all[b].r;
      if (x.family !== y.family) continue;
      const [xs, xe, ys, ye] = [x.rangeStart, x.rangeEnd, y.rangeStart, y.rangeEnd].map((s) => parseIp(s)!.value);
      if (xs <= ye && ys <= xe) {
        throw invalid([...all[b].path, 'subnet'], y.subnet, `overlaps ${pathText(all[a].path)} (${x.rangeStart}-${x.rangeEnd} and ${y.rangeStart}-${y.rangeEnd})`);
      }
    }
  }
}

function canonicalRoute(r: Infer<typeof routeShape>, path: Path): CniRoute {
  const dst = parseCidr(r.dst);
  if (!dst) throw invalid([...path, 'dst'], r.dst, 'is not an ip/prefix');
  const route: CniRoute = { ...r, dst: formatCidr({ ip: networkOf(dst), prefix: dst.prefix }) };
  if (r.gw !== undefined) {
    const gw = parseIp(r.gw);
    if (!gw) throw invalid([...path, 'gw'], r.gw, 'is not an IP address');
    if (gw.family !== dst.ip.family) throw invalid([...path, 'gw'], r.gw, `is not of the family of dst ${r.dst}`);
    route.gw = formatIp(gw);
  }
  return route;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

function checkDataDir(dir: string): string {
  if (!dir.startsWith('/')) throw invalid(['dataDir'], dir, 'must be an absolute path');
  if (CONTROL.test(dir)) throw invalid(['dataDir'], dir, 'contains control characters');
  if (dir.split('/').includes('..')) throw invalid(['dataDir'], dir, 'must not contain ".." segments');
  return dir.length > 1 ? dir.replace(/\/+$/, '') : dir;
}

function checkResolvConf(file: string): string {
  if (!file || CONTROL.test(file)) throw invalid(['resolvConf'], file, 'is not a usable path');
  return file;
}

/** `10.22.0.2-10.22.0.254`, ranges of a set joined with `, `. */
export function describeRangeSet(set: RangeSet): string {
  return set.map((r) => `${r.rangeStart}-${r.rangeEnd}`).join(', ');
}

/** The parsed subnet of a range (config values are already valid). */
export function subnetOf(r: IpRange): Cidr {
  return parseCidr(r.subnet)!;
}

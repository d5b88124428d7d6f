// The `ipam` object of a network config, host-local compatible: zod shape, then host-local's checks.
import { type infer as Infer, array, gte, int, lte, object, optional, string } from 'zod/mini';
import '../zod-config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import {
  type Cidr, type Family, type Ip, addIp, bitsOf, contains, formatCidr, formatIp, hasHostBits,
  lastOf, networkOf, notAnIpReason, parseCidr, parseIp, sameIp,
} from '../base/ip-math.ts';
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

/** The first element of the path of a range from the runtime: named where it came from. */
const RUNTIME_RANGES = 'runtimeConfig.ipRanges';

/** `['ranges', 0, 1, 'subnet']` -> `ipam.ranges[0][1].subnet`; a runtime range's path starts with RUNTIME_RANGES. */
function pathText(path: Path): string {
  const [root, rest] = path[0] === RUNTIME_RANGES ? [RUNTIME_RANGES, path.slice(1)] : ['ipam', path];
  return rest.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : `${s}.${p}`),
    root,
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

/** A range as runtimeConfig.ipRanges carries it (validated as text by the runtimeConfig schema). */
export interface RuntimeRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface IpamParseOptions {
  /**
   * runtimeConfig.ipRanges (the kubelet's podCIDR, through containerd): when there are any,
   * they replace the config's ranges (which are still checked). FIELDS.md says why.
   */
  runtimeRanges?: RuntimeRange[][];
  /** Whether no ranges at all is an error (default): ADD needs some; DEL, CHECK, GC, STATUS do not. */
  requireRanges?: boolean;
}

/** Parses and validates the `ipam` object; throws CniError 7 naming the path and the value. */
export function parseIpamConfig(raw: unknown, networkName: string, options: IpamParseOptions = {}): IpamConfig {
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
  const from: RangeSource = c.subnet !== undefined ? 'legacy' : 'ranges';
  checkFamilies(ranges, from);
  checkOverlaps(ranges, from);
  const runtime = options.runtimeRanges?.length ? runtimeRangeSets(options.runtimeRanges) : undefined;
  if (!ranges.length && !runtime && (options.requireRanges ?? true)) {
    throw invalid([], raw, `has no ranges: set ipam.ranges or ipam.subnet, or have the runtime send ${RUNTIME_RANGES}`);
  }

  return {
    ...(c.type !== undefined && { type: c.type }),
    network: networkName,
    ranges: runtime ?? ranges,
    routes: (c.routes ?? []).map((r, i) => canonicalRoute(r, ['routes', i])),
    dataDir: checkDataDir(c.dataDir ?? DEFAULT_DATA_DIR),
    ...(c.resolvConf !== undefined && { resolvConf: checkResolvConf(c.resolvConf) }),
  };
}

/** Checked like the config's range sets, named as runtimeConfig.ipRanges in errors. */
function runtimeRangeSets(sets: RuntimeRange[][]): RangeSet[] {
  const out = sets.map((set, i) => {
    if (!set.length) throw invalid([RUNTIME_RANGES, i], set, 'is an empty range set');
    return set.map((r, j) => canonicalRange(r, [RUNTIME_RANGES, i, j]));
  });
  checkFamilies(out, 'runtime');
  checkOverlaps(out, 'runtime');
  return out;
}

/** Where range sets came from: `subnet` (then `ranges`), `ranges` alone, or the runtime. */
type RangeSource = 'legacy' | 'ranges' | 'runtime';

/** Where the i-th set, j-th range came from. */
function sourcePath(i: number, j: number, from: RangeSource): Path {
  if (from === 'runtime') return [RUNTIME_RANGES, i, j];
  if (from === 'legacy') return i === 0 ? [] : ['ranges', i - 1, j];
  return ['ranges', i, j];
}

function canonicalRange(r: Infer<typeof rangeShape>, path: Path): IpRange {
  const subnet = parseCidr(r.subnet);
  if (!subnet) throw invalid([...path, 'subnet'], r.subnet, notAnIpReason(r.subnet, 'an ip/prefix'));
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
    if (!ip) throw invalid([...path, key], text, notAnIpReason(text, 'an IP address'));
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

function checkFamilies(sets: RangeSet[], from: RangeSource): void {
  sets.forEach((set, i) =>
    set.forEach((r, j) => {
      if (r.family !== set[0].family) {
        throw invalid([...sourcePath(i, j, from), 'subnet'], r.subnet, `is IPv${r.family} but range set ${i} starts with IPv${set[0].family}: a range set holds one family`);
      }
    }),
  );
}

function checkOverlaps(sets: RangeSet[], from: RangeSource): void {
  const all = sets.flatMap((set, i) => set.map((r, j) => ({ r, path: sourcePath(i, j, from) })));
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
  if (!dst) throw invalid([...path, 'dst'], r.dst, notAnIpReason(r.dst, 'an ip/prefix'));
  const route: CniRoute = { ...r, dst: formatCidr({ ip: networkOf(dst), prefix: dst.prefix }) };
  if (r.gw !== undefined) {
    const gw = parseIp(r.gw);
    if (!gw) throw invalid([...path, 'gw'], r.gw, notAnIpReason(r.gw, 'an IP address'));
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

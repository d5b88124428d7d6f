// Parses a prevResult of any spec version back into Pier's internal CniResult (code 7 on failure).
import {
  type ZodMiniType, type output, array, enum as enumOf, gte, int, literal, looseObject, nullable, optional as zodOptional, pipe,
  refine, string, transform, union,
} from 'zod/mini';
import '../zod-config.ts';
import { ipFamily, isCidr } from './addresses.ts';
import { CniError, ErrorCode } from './errors.ts';
import { keyShape } from './fold-keys.ts';
import type { CniResult, ResultDns, ResultInterface, ResultIp } from './result.ts';
import type { CniRoute } from '../base/route.ts';
import { compareVersions, isSupportedVersion } from './versions.ts';
import { describeIssues } from './zod-details.ts';

// Go leaves a field at its zero value for JSON null, and net.IP reads "" as nil: both mean absent.
function optional<T extends ZodMiniType>(schema: T) {
  return pipe(
    zodOptional(nullable(schema)),
    transform((v) => (v === null ? undefined : v) as output<T> | undefined),
  );
}

const ipText = string().check(refine((s) => ipFamily(s) !== 0, 'must be an IP address'));
const optionalIp = pipe(optional(union([literal(''), ipText])), transform((v) => v || undefined));
const cidrText = string().check(refine(isCidr, 'must be ip/prefix'));
const uint = int().check(gte(0));
const optionalString = pipe(optional(string()), transform((v) => v || undefined));
const stringList = optional(array(string()));

const dnsSchema = optional(
  looseObject({ nameservers: stringList, domain: optionalString, search: stringList, options: stringList }),
);

const routeSchema = looseObject({
  dst: cidrText,
  gw: optionalIp,
  mtu: optional(uint),
  advmss: optional(uint),
  priority: optional(uint),
  table: optional(int()),
  scope: optional(int()),
});

/** 0.3.0 to 1.1.0; `version` on IPs (0.3.x/0.4.0) is accepted and recomputed on output. */
const currentSchema = looseObject({
  interfaces: optional(
    array(
      looseObject({
        name: string(),
        mac: optionalString,
        mtu: optional(uint),
        sandbox: optionalString,
        socketPath: optionalString,
        pciID: optionalString,
      }),
    ),
  ),
  ips: optional(
    array(
      looseObject({
        version: optional(enumOf(['4', '6'])),
        interface: optional(uint),
        address: cidrText,
        gateway: optionalIp,
      }),
    ),
  ),
  routes: optional(array(routeSchema)),
  dns: dnsSchema,
});

const legacyIpSchema = optional(
  looseObject({ ip: cidrText, gateway: optionalIp, routes: optional(array(routeSchema)) }),
);

/** 0.1.0 and 0.2.0. */
const legacySchema = looseObject({ ip4: legacyIpSchema, ip6: legacyIpSchema, dns: dnsSchema });

// Copies only the fields Pier knows, leaving out absent ones, so results compare cleanly.
function pick<T extends object>(from: Record<string, unknown>, keys: readonly (keyof T & string)[]): T {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key];
  return out as T;
}

const ROUTE_KEYS = ['dst', 'gw', 'mtu', 'advmss', 'priority', 'table', 'scope'] as const;
const DNS_KEYS = ['nameservers', 'domain', 'search', 'options'] as const;

const ROUTE_SHAPE = keyShape(ROUTE_KEYS);

/** The field names of a result of any version, for case-insensitive matching (fold-keys.ts). */
export const PREV_RESULT_SHAPE = keyShape(['cniVersion', 'interfaces', 'ips', 'routes', 'dns', 'ip4', 'ip6'], {
  interfaces: keyShape(['name', 'mac', 'mtu', 'sandbox', 'socketPath', 'pciID']),
  ips: keyShape(['version', 'interface', 'address', 'gateway']),
  routes: ROUTE_SHAPE,
  dns: keyShape(DNS_KEYS),
  ip4: keyShape(['ip', 'gateway', 'routes'], { routes: ROUTE_SHAPE }),
  ip6: keyShape(['ip', 'gateway', 'routes'], { routes: ROUTE_SHAPE }),
});

function finish(result: CniResult, dns: Record<string, unknown> | undefined): CniResult {
  if (dns) {
    const picked = pick<ResultDns>(dns, DNS_KEYS);
    if (Object.keys(picked).length) result.dns = picked;
  }
  return result;
}

function fromCurrent(parsed: output<typeof currentSchema>): CniResult {
  const result: CniResult = {};
  if (parsed.interfaces) {
    result.interfaces = parsed.interfaces.map((i) =>
      pick<ResultInterface>(i, ['name', 'mac', 'mtu', 'sandbox', 'socketPath', 'pciID']),
    );
  }
  if (parsed.ips) result.ips = parsed.ips.map((ip) => pick<ResultIp>(ip, ['address', 'gateway', 'interface']));
  if (parsed.routes) result.routes = parsed.routes.map((r) => pick<CniRoute>(r, ROUTE_KEYS));
  return finish(result, parsed.dns);
}

function fromLegacy(parsed: output<typeof legacySchema>): CniResult {
  const result: CniResult = {};
  const ips: ResultIp[] = [];
  const routes: CniRoute[] = [];
  for (const config of [parsed.ip4, parsed.ip6]) {
    if (!config) continue;
    ips.push(pick<ResultIp>({ address: config.ip, gateway: config.gateway }, ['address', 'gateway']));
    for (const r of config.routes ?? []) routes.push(pick<CniRoute>(r, ROUTE_KEYS));
  }
  if (ips.length) result.ips = ips;
  if (routes.length) result.routes = routes;
  return finish(result, parsed.dns);
}

/**
 * Reads a prevResult. Its own `cniVersion` decides the shape when it names a supported
 * version, else the config's `version` does (as in the Go library). Code 7 naming the bad path.
 */
export function parsePrevResult(raw: unknown, version: string): CniResult {
  const own = raw && typeof raw === 'object' ? (raw as { cniVersion?: unknown }).cniVersion : undefined;
  const shapeVersion = isSupportedVersion(own) ? own : version;
  const legacy = compareVersions(shapeVersion, '0.3.0') < 0;
  const parsed = (legacy ? legacySchema : currentSchema).safeParse(raw);
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid prevResult', describeIssues(parsed.error.issues, raw, 'prevResult'));
  }
  return legacy
    ? fromLegacy(parsed.data as output<typeof legacySchema>)
    : fromCurrent(parsed.data as output<typeof currentSchema>);
}

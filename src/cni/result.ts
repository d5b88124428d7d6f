// Pier's internal CNI result (the 1.1.0 shape) and its conversion to what each spec version prints.
import { ipFamily, parseCidr } from './addresses.ts';
import { CniError, ErrorCode } from './errors.ts';
import { assertSupportedVersion, compareVersions } from './versions.ts';
import type { CniRoute } from '../base/route.ts';

export interface ResultInterface {
  name: string;
  mac?: string;
  /** 1.1.0 only. */
  mtu?: number;
  /** The netns path, for interfaces inside the pod. */
  sandbox?: string;
  /** 1.1.0 only. */
  socketPath?: string;
  /** 1.1.0 only. */
  pciID?: string;
}

export interface ResultIp {
  /** "ip/prefix". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`; absent in an IPAM result. */
  interface?: number;
}

export interface ResultDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

/** A result as Pier builds it; convertResult() shapes it for the config's version. */
export interface CniResult {
  interfaces?: ResultInterface[];
  ips?: ResultIp[];
  routes?: CniRoute[];
  dns?: ResultDns;
}

/** A JSON-ready object whose key order is the Go library's struct order. */
export type VersionedResult = Record<string, unknown> & { cniVersion: string };

// The builders below add keys in Go's struct field order and leave out what Go's `omitempty`
// leaves out (empty strings, zero ints, empty slices), so JSON.stringify prints what Go prints.

function putString(out: Record<string, unknown>, key: string, value: string | undefined): void {
  if (value) out[key] = value;
}
function putInt(out: Record<string, unknown>, key: string, value: number | undefined): void {
  if (value) out[key] = value;
}
function putList(out: Record<string, unknown>, key: string, value: unknown[] | undefined): void {
  if (value?.length) out[key] = value;
}

function buildDns(dns: ResultDns | undefined): Record<string, unknown> {
  // types.DNS is a struct, not a pointer, so Go always prints it: `"dns": {}` when empty.
  const out: Record<string, unknown> = {};
  putList(out, 'nameservers', dns?.nameservers);
  putString(out, 'domain', dns?.domain);
  putList(out, 'search', dns?.search);
  putList(out, 'options', dns?.options);
  return out;
}

function buildInterface(iface: ResultInterface, v11: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { name: iface.name };
  putString(out, 'mac', iface.mac);
  if (v11) putInt(out, 'mtu', iface.mtu);
  putString(out, 'sandbox', iface.sandbox);
  if (v11) {
    putString(out, 'socketPath', iface.socketPath);
    putString(out, 'pciID', iface.pciID);
  }
  return out;
}

function buildRoute(route: CniRoute, v11: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { dst: route.dst };
  putString(out, 'gw', route.gw);
  if (v11) {
    putInt(out, 'mtu', route.mtu);
    putInt(out, 'advmss', route.advmss);
    putInt(out, 'priority', route.priority);
    // table and scope are *int in Go: 0 is a real value and is printed.
    if (route.table !== undefined) out.table = route.table;
    if (route.scope !== undefined) out.scope = route.scope;
  }
  return out;
}

function addressFamily(address: string): 4 | 6 {
  const cidr = parseCidr(address);
  const family = cidr ? cidr.family : ipFamily(address);
  if (family === 0) throw new CniError(ErrorCode.Internal, `result address ${JSON.stringify(address)} is not ip/prefix`);
  return family;
}

function buildIp(ip: ResultIp, withVersion: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (withVersion) out.version = String(addressFamily(ip.address));
  if (ip.interface !== undefined) out.interface = ip.interface;
  out.address = ip.address;
  putString(out, 'gateway', ip.gateway);
  return out;
}

/** 0.3.0 to 1.1.0: {cniVersion, interfaces, ips, routes, dns}. */
function buildCurrent(result: CniResult, version: string): VersionedResult {
  const v11 = compareVersions(version, '1.1.0') >= 0;
  const legacyIps = compareVersions(version, '1.0.0') < 0;
  const out: VersionedResult = { cniVersion: version };
  putList(out, 'interfaces', result.interfaces?.map((i) => buildInterface(i, v11)));
  putList(out, 'ips', result.ips?.map((ip) => buildIp(ip, legacyIps)));
  putList(out, 'routes', result.routes?.map((r) => buildRoute(r, v11)));
  out.dns = buildDns(result.dns);
  return out;
}

/** 0.1.0 and 0.2.0: the first IPv4 and first IPv6 address, each with its family's routes. */
function buildLegacy(result: CniResult, version: string): VersionedResult {
  const configs: Partial<Record<4 | 6, Record<string, unknown>>> = {};
  for (const ip of result.ips ?? []) {
    const family = addressFamily(ip.address);
    if (configs[family]) continue;
    const config: Record<string, unknown> = { ip: ip.address };
    putString(config, 'gateway', ip.gateway);
    configs[family] = config;
  }
  if (!configs[4] && !configs[6]) {
    throw new CniError(ErrorCode.Internal, 'cannot convert: no valid IP addresses', `a ${version} result needs at least one IP`);
  }
  for (const route of result.routes ?? []) {
    const config = configs[addressFamily(route.dst)];
    if (!config) continue;
    const routes = (config.routes ??= []) as unknown[];
    routes.push(buildRoute(route, false));
  }
  const out: VersionedResult = { cniVersion: version };
  if (configs[4]) out.ip4 = configs[4];
  if (configs[6]) out.ip6 = configs[6];
  out.dns = buildDns(result.dns);
  return out;
}

/**
 * The result as the reference Go library prints it for `toVersion`: 1.1.0 in full; 1.0.0
 * without the 1.1 route and interface fields; 0.3.x/0.4.0 also with `version` on each IP;
 * 0.1.0/0.2.0 as `ip4`/`ip6`. Fails (code 999, as Go) when a 0.x.0 result would have no IP.
 */
export function convertResult(result: CniResult, toVersion: string): VersionedResult {
  assertSupportedVersion(toVersion);
  return compareVersions(toVersion, '0.3.0') < 0 ? buildLegacy(result, toVersion) : buildCurrent(result, toVersion);
}

export { parsePrevResult } from './prev-result.ts';

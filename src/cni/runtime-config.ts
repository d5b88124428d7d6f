// The runtimeConfig capabilities: their key shape (for case-insensitive names), then a zod schema.
import {
  type ZodMiniType, array, enum as enumOf, gte, int, lte, object, optional, pipe, record, refine, string, transform,
} from 'zod/mini';
import '../zod-config.ts';
import { ipFamily, isCidr, isIpOrCidr, normaliseMac, parseCidr } from './addresses.ts';
import { isPlainObject, keyShape } from './fold-keys.ts';

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  /** Absent means every host address (containerd sends "" for that). */
  hostIP?: string;
}

export interface IpRange {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

export interface RuntimeDns {
  servers?: string[];
  searches?: string[];
  options?: string[];
  domain?: string;
}

/** Rates and bursts in bits (per second), as the bandwidth capability defines them. */
export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

export interface RuntimeConfig {
  portMappings?: PortMapping[];
  /** Requested addresses, "ip/prefix" or bare. */
  ips?: string[];
  /** Requested MAC, normalised to lowercase colon form. */
  mac?: string;
  /** Range sets: one address is allocated from each set. */
  ipRanges?: IpRange[][];
  dns?: RuntimeDns;
  bandwidth?: Bandwidth;
  /** podman: network name to the pod's DNS aliases on it. */
  aliases?: Record<string, string[]>;
  cgroupPath?: string;
}

const RANGE_SHAPE = keyShape(['subnet', 'rangeStart', 'rangeEnd', 'gateway']);

/** runtimeConfig's fields and theirs. Alias keys are network names, data rather than fields. */
export const RUNTIME_CONFIG_SHAPE = keyShape(['portMappings', 'ips', 'mac', 'ipRanges', 'dns', 'bandwidth', 'aliases', 'cgroupPath'], {
  portMappings: keyShape(['hostPort', 'containerPort', 'protocol', 'hostIP']),
  ipRanges: RANGE_SHAPE,
  dns: keyShape(['servers', 'searches', 'options', 'domain']),
  bandwidth: keyShape(['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst']),
});

/**
 * Groups a flat list of ranges (containerd's form) into range sets: all IPv4 ranges in one set
 * and all IPv6 ranges in another, so a dual-stack list yields one address per family, and
 * several ranges of one family stay alternatives within a set, as host-local reads them.
 */
function groupFlatRanges(ranges: unknown[]): unknown[][] {
  const sets = new Map<number, unknown[]>();
  for (const range of ranges) {
    const subnet = isPlainObject(range) && typeof range.subnet === 'string' ? range.subnet : '';
    const family = parseCidr(subnet)?.family ?? 4;
    if (!sets.has(family)) sets.set(family, []);
    sets.get(family)!.push(range);
  }
  return [...sets.values()];
}

/**
 * Turns containerd's flat `ipRanges` list into range sets, on a runtimeConfig whose keys
 * foldKeys has made canonical (containerd sends `HostPort`, `Subnet`, `IngressRate`...).
 */
export function normaliseRuntimeConfig(rc: unknown): unknown {
  if (!isPlainObject(rc) || !Array.isArray(rc.ipRanges)) return rc;
  const entries = rc.ipRanges as unknown[];
  const flat = entries.length > 0 && entries.every(isPlainObject);
  return flat ? { ...rc, ipRanges: groupFlatRanges(entries) } : rc;
}

const port = int().check(gte(1, 'must be 1..65535'), lte(65535, 'must be 1..65535'));
const ip = string().check(refine((s) => ipFamily(s) !== 0, 'must be an IP address'));
const count = int().check(gte(0));

export const macSchema = pipe(
  string().check(refine((s) => normaliseMac(s) !== undefined, 'must be a 6-byte unicast MAC address')),
  transform((s) => normaliseMac(s)!),
);

export const requestedIpSchema = string().check(refine(isIpOrCidr, 'must be an IP address or ip/prefix'));

const portMappingSchema = pipe(
  object({
    hostPort: port,
    containerPort: port,
    protocol: pipe(
      pipe(optional(string()), transform((p) => (p || 'tcp').toLowerCase())),
      enumOf(['tcp', 'udp', 'sctp'], 'must be tcp, udp or sctp'),
    ),
    hostIP: optional(string()).check(refine((s) => !s || ipFamily(s) !== 0, 'must be an IP address or empty')),
  }),
  transform(({ hostIP, ...mapping }): PortMapping => (hostIP ? { ...mapping, hostIP } : mapping)),
);

const rangeSchema = object({
  subnet: string().check(refine(isCidr, 'must be a CIDR')),
  rangeStart: optional(ip),
  rangeEnd: optional(ip),
  gateway: optional(ip),
});

const stringList = array(string());

export const runtimeConfigSchema: ZodMiniType<RuntimeConfig> = object({
  portMappings: optional(array(portMappingSchema)),
  ips: optional(array(requestedIpSchema)),
  mac: optional(macSchema),
  ipRanges: optional(array(array(rangeSchema))),
  dns: optional(
    object({ servers: optional(stringList), searches: optional(stringList), options: optional(stringList), domain: optional(string()) }),
  ),
  bandwidth: optional(
    object({ ingressRate: optional(count), ingressBurst: optional(count), egressRate: optional(count), egressBurst: optional(count) }),
  ),
  aliases: optional(record(string(), stringList)),
  cgroupPath: optional(string()),
});

// Parses the network config on stdin into a typed NetConf (zod), and resolves requested IPs/MAC.
import { isAbsolute } from 'node:path';
import {
  _default, array, boolean, enum as enumOf, gte, int, looseObject, lte, minLength, object, optional, pipe, record, refine,
  regex, string, superRefine, transform, unknown,
} from 'zod/mini';
import '../zod-config.ts';
import { normaliseMac } from './addresses.ts';
import type { CniArgs } from './cni-args.ts';
import { CONTAINER_ID_PATTERN, checkInterfaceName } from './env.ts';
import { CniError, ErrorCode } from './errors.ts';
import { foldKeys, isPlainObject, keyShape } from './fold-keys.ts';
import { NETCONF_SHAPE } from './config-keys.ts';
import { LOG_LEVELS, type LogLevel } from './log.ts';
import { parsePrevResult } from './prev-result.ts';
import type { CniResult, ResultDns } from './result.ts';
import {
  type RuntimeConfig,
  macSchema,
  normaliseRuntimeConfig,
  requestedIpSchema,
  runtimeConfigSchema,
} from './runtime-config.ts';
import { type CniVersion, assertSupportedVersion, isSupportedVersion } from './versions.ts';
import { describeIssues } from './zod-details.ts';

/** Larger stdin is refused before JSON.parse (code 6): no real config comes near it. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** The `ipam` section: its `type` plus whatever that IPAM reads, kept as sent. */
export type IpamConf = { type: string } & Record<string, unknown>;

/** One `(containerID, ifname)` that GC must keep. */
export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  // The reference bridge plugin's fields (CNI-NOTES §2).
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  mtu?: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  vlan: number;
  /** VLAN IDs allowed on the port, sorted and unique. */
  vlanTrunk?: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /** Absent, or `{}`/`{"type": ""}` (an L2-only bridge): no IPAM. */
  ipam?: IpamConf;
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  capabilities: Record<string, boolean>;
  runtimeConfig: RuntimeConfig;
  args?: { cni?: { ips?: string[]; mac?: string; labels?: Array<{ key: string; value: string }> } };
  prevResult?: CniResult;
  /** GC: `cni.dev/valid-attachments`, or libcni's older `cni.dev/attachments`. */
  validAttachments?: Attachment[];
  logFile?: string;
  logLevel?: LogLevel;
  /** Where Pier keeps its records when `ipam` is not Pier's own (checked by ipamPlan). */
  dataDir?: unknown;
  /** Pier's nftables table (checked by checkPierFields). */
  nftTable?: unknown;
  /** STATUS reports not ready (50) while this file is missing; `pier agent` writes it. */
  readyFile?: string;
  /** The whole stdin object as parsed, unknown fields included. */
  raw: Record<string, unknown>;
}

const flag = _default(boolean(), false);
const stringList = array(string());
const vlanId = int().check(gte(1, 'must be 1..4094'), lte(4094, 'must be 1..4094'));
const attachments = array(object({ containerID: string(), ifname: string() }));

/** The reference bridge's trunk entries: `{id}` or `{minID, maxID}`, expanded to a list of IDs. */
const vlanTrunkSchema = pipe(
  array(
    object({ id: optional(vlanId), minID: optional(vlanId), maxID: optional(vlanId) }).check(
      superRefine((t, ctx) => {
        if ((t.minID === undefined) !== (t.maxID === undefined)) {
          ctx.addIssue({ code: 'custom', message: 'minID and maxID must be set together' });
        } else if (t.minID !== undefined && t.minID > t.maxID!) {
          ctx.addIssue({ code: 'custom', message: 'minID is greater than maxID' });
        } else if (t.id === undefined && t.minID === undefined) {
          ctx.addIssue({ code: 'custom', message: 'needs id or minID/maxID' });
        }
      }),
    ),
  ),
  transform((trunks) => {
    const ids = new Set<number>();
    for (const t of trunks) {
      if (t.id !== undefined) ids.add(t.id);
      if (t.minID !== undefined) for (let id = t.minID; id <= t.maxID!; id++) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  }),
);

const netConfSchema = object({
  name: string().check(regex(CONTAINER_ID_PATTERN, `must match ${CONTAINER_ID_PATTERN.source}`)),
  type: string().check(minLength(1, 'must not be empty')),
  bridge: _default(string(), 'cni0').check(
    superRefine((name, ctx) => {
      const problem = checkInterfaceName(name);
      if (problem) ctx.addIssue({ code: 'custom', message: `bridge name ${problem}` });
    }),
  ),
  isGateway: flag,
  isDefaultGateway: flag,
  forceAddress: flag,
  ipMasq: flag,
  // Go reads a missing mtu as 0 and 0 as "use the default": accept an explicit 0 the same way.
  mtu: pipe(
    optional(int().check(refine((m) => m === 0 || (m >= 68 && m <= 65535), 'must be 68..65535'))),
    transform((m) => m || undefined),
  ),
  hairpinMode: flag,
  promiscMode: flag,
  vlan: _default(int().check(gte(0, 'must be 0..4094'), lte(4094, 'must be 0..4094')), 0),
  vlanTrunk: optional(vlanTrunkSchema),
  preserveDefaultVlan: _default(boolean(), true),
  macspoofchk: flag,
  enabledad: flag,
  disableContainerInterface: flag,
  portIsolation: flag,
  ipam: pipe(
    optional(looseObject({ type: optional(string()) })),
    transform((ipam) => (ipam?.type ? (ipam as IpamConf) : undefined)),
  ),
  dns: optional(
    object({ nameservers: optional(stringList), domain: optional(string()), search: optional(stringList), options: optional(stringList) }),
  ),
  capabilities: _default(record(string(), boolean()), {}),
  runtimeConfig: _default(runtimeConfigSchema, {}),
  args: optional(
    object({
      cni: optional(
        object({
          ips: optional(array(requestedIpSchema)),
          mac: optional(macSchema),
          labels: optional(array(object({ key: string(), value: string() }))),
        }),
      ),
    }),
  ),
  prevResult: optional(unknown()),
  logFile: optional(string().check(refine(isAbsolute, 'must be an absolute path'))),
  logLevel: optional(enumOf(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`)),
  readyFile: optional(string().check(refine(isAbsolute, 'must be an absolute path'))),
  'cni.dev/valid-attachments': optional(attachments),
  'cni.dev/attachments': optional(attachments),
}).check(
  superRefine((c, ctx) => {
    if (c.hairpinMode && c.promiscMode) {
      ctx.addIssue({ code: 'custom', path: ['promiscMode'], message: 'cannot be set together with hairpinMode' });
    }
    if (c.vlan !== 0 && c.vlanTrunk !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['vlanTrunk'], message: 'cannot be set together with vlan' });
    }
  }),
);

function configError(msg: string, details: string, cause?: unknown): CniError {
  return new CniError(ErrorCode.InvalidConfig, msg, details, { cause });
}

/** Size guard and JSON.parse: code 6 for anything that is not a JSON object. */
function decode(stdin: string | Uint8Array): Record<string, unknown> {
  const size = typeof stdin === 'string' ? Buffer.byteLength(stdin) : stdin.byteLength;
  if (size > MAX_CONFIG_BYTES) {
    throw new CniError(ErrorCode.DecodingFailure, 'network config too large', `${size} bytes, the limit is ${MAX_CONFIG_BYTES}`);
  }
  const text = typeof stdin === 'string' ? stdin : Buffer.from(stdin).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CniError(ErrorCode.DecodingFailure, 'error decoding network config', (err as Error).message, { cause: err });
  }
  if (!isPlainObject(parsed)) {
    throw new CniError(ErrorCode.DecodingFailure, 'error decoding network config', 'the network config must be a JSON object');
  }
  const depth = nestingDepth(parsed);
  if (depth > MAX_CONFIG_DEPTH) {
    throw new CniError(ErrorCode.DecodingFailure, 'network config nested too deeply', `${depth} levels, the limit is ${MAX_CONFIG_DEPTH}`);
  }
  return parsed;
}

/**
 * Real configs are a handful of levels deep. JSON.parse takes any depth, but the recursive code
 * after it (schema validation, error details) overflows the stack on 100,000 nested arrays and
 * the runtime would get an internal error (999) instead of a decoding failure.
 */
export const MAX_CONFIG_DEPTH = 64;

/** The depth of a parsed JSON value, without recursion (stops counting past the limit). */
function nestingDepth(root: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_CONFIG_DEPTH) return max;
    for (const x of Object.values(v)) stack.push([x, d + 1]);
  }
  return max;
}

/**
 * The config's version: a missing or empty cniVersion is 0.1.0 (the Go library's reading);
 * a non-string is code 7 and an unsupported one code 1.
 */
function configVersion(conf: Record<string, unknown>): CniVersion {
  const v = conf.cniVersion;
  if (v === undefined || v === '') return '0.1.0';
  if (typeof v !== 'string') throw configError('invalid network config', `cniVersion: must be a string (got ${JSON.stringify(v)})`);
  return assertSupportedVersion(v);
}

/**
 * Who reads the config: Pier as the main plugin, or `pier-ipam` as the IPAM plugin of another
 * main plugin, whose config it is: then only the fields an IPAM plugin reads count.
 */
export type ConfigReader = 'plugin' | 'ipam';

/** What an IPAM plugin reads (host-local's reading plus Pier's log and the GC list). */
const IPAM_READS = new Set(['cniVersion', 'name', 'type', 'ipam', 'runtimeConfig', 'args', 'prevResult', 'logFile', 'logLevel', 'cni.dev/valid-attachments', 'cni.dev/attachments']);
const IPAM_RUNTIME_READS = ['ips', 'ipRanges', 'dns'];

/**
 * The config without its main plugin's fields. The reference bridge's `macspoofchk`, another
 * plugin's `vlan` of a different range, its capabilities and port mappings: an IPAM plugin has
 * no business refusing them, and must not fail its caller's ADD over them.
 */
function ipamFieldsOf(conf: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(conf)) if (IPAM_READS.has(key)) out[key] = conf[key];
  const rc = out.runtimeConfig;
  if (isPlainObject(rc)) {
    out.runtimeConfig = Object.fromEntries(IPAM_RUNTIME_READS.filter((k) => k in rc).map((k) => [k, rc[k]]));
  }
  const cni = isPlainObject(out.args) ? out.args.cni : undefined;
  if (isPlainObject(cni)) out.args = 'ips' in cni ? { cni: { ips: cni.ips } } : {};
  else delete out.args;
  return out;
}

/**
 * Parses stdin into a NetConf. Keys match case-insensitively at every depth, as Go's decoder
 * does; unknown fields are tolerated. Codes: 6 too large or not JSON, 1 unsupported
 * cniVersion, 7 any schema failure, with details naming each bad path and value.
 */
export function parseNetConf(stdin: string | Uint8Array, mode: ConfigReader = 'plugin'): NetConf {
  const raw = decode(stdin);
  const folded = foldKeys(raw, NETCONF_SHAPE) as Record<string, unknown>;
  const input = mode === 'ipam' ? ipamFieldsOf(folded) : folded;
  const cniVersion = configVersion(input);
  if ('runtimeConfig' in input) input.runtimeConfig = normaliseRuntimeConfig(input.runtimeConfig);

  const parsed = netConfSchema.safeParse(input);
  if (!parsed.success) throw configError('invalid network config', describeIssues(parsed.error.issues, input));
  const c = parsed.data;

  const conf: NetConf = {
    cniVersion,
    name: c.name,
    type: c.type,
    bridge: c.bridge,
    // isDefaultGateway needs the gateway address on the bridge: it implies isGateway.
    isGateway: c.isGateway || c.isDefaultGateway,
    isDefaultGateway: c.isDefaultGateway,
    forceAddress: c.forceAddress,
    ipMasq: c.ipMasq,
    hairpinMode: c.hairpinMode,
    promiscMode: c.promiscMode,
    vlan: c.vlan,
    preserveDefaultVlan: c.preserveDefaultVlan,
    macspoofchk: c.macspoofchk,
    enabledad: c.enabledad,
    disableContainerInterface: c.disableContainerInterface,
    portIsolation: c.portIsolation,
    capabilities: c.capabilities,
    runtimeConfig: c.runtimeConfig,
    raw,
  };
  if (c.mtu !== undefined) conf.mtu = c.mtu;
  if (c.vlanTrunk !== undefined) conf.vlanTrunk = c.vlanTrunk;
  if (c.ipam !== undefined) conf.ipam = c.ipam;
  if (c.dns !== undefined) conf.dns = c.dns;
  if (c.args !== undefined) conf.args = c.args;
  if (c.logFile !== undefined) conf.logFile = c.logFile;
  if (c.logLevel !== undefined) conf.logLevel = c.logLevel;
  if (input.dataDir !== undefined) conf.dataDir = input.dataDir;
  if (input.nftTable !== undefined) conf.nftTable = input.nftTable;
  if (c.readyFile !== undefined) conf.readyFile = c.readyFile;
  const valid = c['cni.dev/valid-attachments'] ?? c['cni.dev/attachments'];
  if (valid !== undefined) conf.validAttachments = valid;
  if (c.prevResult !== undefined) conf.prevResult = parsePrevResult(c.prevResult, cniVersion);
  return conf;
}

const CNI_VERSION_SHAPE = keyShape(['cniVersion']);

/**
 * The config's cniVersion if stdin is readable and names a supported one, else undefined: for
 * the error reply and VERSION, which must work even when the rest of the config is bad.
 */
export function peekCniVersion(stdin: string | Uint8Array): CniVersion | undefined {
  try {
    const v = foldKeys(decode(stdin), CNI_VERSION_SHAPE) as Record<string, unknown>;
    return isSupportedVersion(v.cniVersion) ? v.cniVersion : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The addresses the runtime asked for, by the conventions' precedence: runtimeConfig `ips`,
 * then `args.cni.ips`, then CNI_ARGS `IP=`. Empty when none was asked for.
 */
export function requestedIps(conf: NetConf, cniArgs: CniArgs): string[] {
  if (conf.runtimeConfig.ips?.length) return conf.runtimeConfig.ips;
  if (conf.args?.cni?.ips?.length) return conf.args.cni.ips;
  return cniArgs.ips;
}

/**
 * The MAC the runtime asked for (runtimeConfig `mac`, then `args.cni.mac`, then CNI_ARGS
 * `MAC=`), in lowercase colon form. A CNI_ARGS MAC that is not a 6-byte unicast address is
 * code 4; the config's were checked by parseNetConf.
 */
export function requestedMac(conf: NetConf, cniArgs: CniArgs): string | undefined {
  if (conf.runtimeConfig.mac) return conf.runtimeConfig.mac;
  if (conf.args?.cni?.mac) return conf.args.cni.mac;
  if (cniArgs.mac === undefined) return undefined;
  const mac = normaliseMac(cniArgs.mac);
  if (!mac) {
    throw new CniError(ErrorCode.InvalidEnv, 'CNI_ARGS: invalid MAC', `MAC=${cniArgs.mac} must be a 6-byte unicast MAC address`);
  }
  return mac;
}

function hasDns(d: ResultDns | undefined): d is ResultDns {
  return Boolean(d && (d.nameservers?.length || d.domain || d.search?.length || d.options?.length));
}

/**
 * The result's `dns`, by the same precedence as requested IPs: the runtime's (runtimeConfig
 * `dns`, which knows the pod's cluster DNS), then the config's `dns`, then what IPAM returned
 * (Pier's `resolvConf`, or a delegated plugin's). The first that says anything wins whole.
 */
export function resultDns(conf: NetConf, fromIpam: ResultDns | undefined): ResultDns | undefined {
  const rt = conf.runtimeConfig.dns;
  const runtime: ResultDns | undefined = rt && {
    ...(rt.servers?.length && { nameservers: rt.servers }),
    ...(rt.domain && { domain: rt.domain }),
    ...(rt.searches?.length && { search: rt.searches }),
    ...(rt.options?.length && { options: rt.options }),
  };
  return [runtime, conf.dns, fromIpam].find(hasDns) ?? fromIpam;
}

// What every command gets: the parsed env and config, a logger, IPAM dependencies, and where
// the attachment records live.
import type { Logger } from '../log.ts';
import type { NetConf } from '../config.ts';
import type { CniArgs } from '../cni-args.ts';
import type { AttachEnv, DelEnv, NodeEnv } from '../env.ts';
import { CniError, ErrorCode } from '../errors.ts';
import { DEFAULT_DATA_DIR, parseIpamConfig, type IpamConfig } from '../../ipam/config.ts';
import type { IpamDeps, StoreLocation } from '../../ipam/ipam.ts';
import type { NatDriver } from './nat.ts';

export interface CommandDeps {
  ipam: IpamDeps;
  log: Logger;
  /** nftables side; undefined until configured (tests may inject a fake). */
  nat: NatDriver;
}

export interface Ctx<E = AttachEnv | DelEnv | NodeEnv> {
  env: E;
  rawEnv: Record<string, string | undefined>;
  stdin: string | Buffer;
  conf: NetConf;
  cniArgs: CniArgs;
  deps: CommandDeps;
  /** Pier's own IPAM config, when `ipam.type` is `pier-ipam`. */
  ipam?: IpamConfig;
  /** The delegated IPAM plugin's type, when it is another one. */
  delegateIpam?: string;
  /** Where this network's attachment records live. */
  records: StoreLocation;
}

export const PIER_IPAM = 'pier-ipam';

/**
 * Decides how IPAM is done and where records live, from the parsed config. Only ADD allocates,
 * so only ADD reads the runtime's ipRanges and needs ranges at all: CHECK, DEL and GC go by the
 * records whatever the ranges are today, and a kubelet-style config whose ranges come only
 * from the runtime still answers STATUS, GC and a DEL without runtimeConfig.
 */
export function ipamPlan(conf: NetConf, command: string): Pick<Ctx, 'ipam' | 'delegateIpam' | 'records'> {
  const type = conf.ipam?.type ?? '';
  if (type === PIER_IPAM) {
    const adding = command === 'ADD';
    const ipam = parseIpamConfig(conf.ipam, conf.name, { requireRanges: adding, ...(adding && { runtimeRanges: conf.runtimeConfig.ipRanges }) });
    return { ipam, records: { dataDir: ipam.dataDir, network: conf.name } };
  }
  // Delegating to the main plugin itself would run it again with the same stdin, which
  // delegates again: a chain of processes until the runtime's timeout.
  if (type === 'pier' || type === conf.type) {
    throw new CniError(ErrorCode.InvalidConfig, `ipam.type ${JSON.stringify(type)} is the main plugin itself`, `use "ipam": {"type": "${PIER_IPAM}"} for Pier's own IPAM`);
  }
  // With a delegated (or no) IPAM, Pier still keeps its own record of what ADD made.
  const dataDir = conf.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== 'string' || !dataDir.startsWith('/') || dataDir.split('/').includes('..') || /[\0-\x1f]/.test(dataDir)) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network config', `dataDir: must be an absolute path without ".." (got ${JSON.stringify(dataDir)})`);
  }
  return { ...(type && { delegateIpam: type }), records: { dataDir, network: conf.name } };
}

/** Pier's own top-level fields beyond the reference bridge's: checked before any side effect. */
export function checkPierFields(conf: NetConf, command: string): void {
  // Reference bridge fields Pier does not implement: refusing beats silently ignoring a
  // security setting (macspoofchk) or an interface state the user asked for.
  if (command === 'ADD') {
    for (const key of ['macspoofchk', 'disableContainerInterface'] as const) {
      if (conf[key]) throw new CniError(ErrorCode.UnsupportedField, `${key} is not supported by Pier yet`, `${key}=true`);
    }
  }
  const t = conf.nftTable;
  if (t !== undefined && (typeof t !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(t))) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network config', `nftTable: must be a name of letters, digits and _ (got ${JSON.stringify(t)})`);
  }
}

// Where a network keeps its attachment records, read from its config exactly as the plugin
// reads it: `<ipam.dataDir>` with Pier's IPAM, the top-level `dataDir` otherwise.
import { parseNetConf } from '../cni/config.ts';
import { ipamPlan } from '../cni/commands/context.ts';
import { CniError } from '../cni/errors.ts';
import type { StoreLocation } from '../ipam/ipam.ts';
import { CliError } from './conf-file.ts';

export function recordsLocation(conf: Record<string, unknown>): StoreLocation {
  try {
    return ipamPlan(parseNetConf(JSON.stringify(conf)), 'GC').records;
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    throw new CliError(`invalid network config: ${err.message}${err.details ? ` (${err.details})` : ''}`, 'fix the field named above');
  }
}

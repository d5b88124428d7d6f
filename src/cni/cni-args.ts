// Parses CNI_ARGS ("K=V;K=V") with the Go library's rules (types.LoadArgs) into typed CniArgs.
import { isIpOrCidr } from './addresses.ts';
import { CniError, ErrorCode } from './errors.ts';

/** The CNI_ARGS keys Pier understands. */
export interface CniArgs {
  /** `IP=`: requested addresses, bare or "ip/prefix" (a comma-separated list is allowed). */
  ips: string[];
  /** `MAC=`: requested MAC as given; requestedMac() validates it. */
  mac?: string;
  k8sPodNamespace?: string;
  k8sPodName?: string;
  k8sPodInfraContainerId?: string;
  k8sPodUid?: string;
  /** `IgnoreUnknown=1|true`: unknown keys are kept in `unknown` instead of failing. */
  ignoreUnknown: boolean;
  /** Pairs with keys Pier does not know, when ignored. */
  unknown: Record<string, string>;
}

const STRING_KEYS = {
  MAC: 'mac',
  K8S_POD_NAMESPACE: 'k8sPodNamespace',
  K8S_POD_NAME: 'k8sPodName',
  K8S_POD_INFRA_CONTAINER_ID: 'k8sPodInfraContainerId',
  K8S_POD_UID: 'k8sPodUid',
} as const;

function invalid(msg: string, details = ''): CniError {
  return new CniError(ErrorCode.InvalidEnv, `CNI_ARGS: ${msg}`, details);
}

/** Go's UnmarshallableBool: "1"/"true" and "0"/"false", case-insensitive; anything else fails. */
function parseBool(value: string): boolean {
  const v = value.toLowerCase();
  if (v === '1' || v === 'true') return true;
  if (v === '0' || v === 'false') return false;
  throw invalid(`error parsing value of pair "IgnoreUnknown=${value}"`, 'IgnoreUnknown must be 1, true, 0 or false');
}

/**
 * Parses CNI_ARGS. As in Go: '' means no args; every pair needs exactly one `=` (so an empty
 * pair from a trailing `;` and a value containing `=` are errors, code 4); keys are
 * case-sensitive and a later pair wins; unknown keys fail with code 2 unless IgnoreUnknown is
 * true, wherever IgnoreUnknown appears in the list.
 */
export function parseCniArgs(text: string): CniArgs {
  const out: CniArgs = { ips: [], ignoreUnknown: false, unknown: {} };
  if (text === '') return out;
  const unknown: Array<[string, string]> = [];
  for (const pair of text.split(';')) {
    const kv = pair.split('=');
    if (kv.length !== 2) throw invalid(`invalid pair ${JSON.stringify(pair)}`, 'each pair must be KEY=VALUE');
    const [key, value] = kv as [string, string];
    if (key === 'IP') {
      // host-local's rule: an empty value requests nothing; entries are trimmed.
      out.ips = value === '' ? [] : value.split(',').map((s) => s.trim());
      const bad = out.ips.find((ip) => !isIpOrCidr(ip));
      if (bad !== undefined) throw invalid(`error parsing value of pair ${JSON.stringify(pair)}`, `invalid IP ${JSON.stringify(bad)}`);
    } else if (key === 'IgnoreUnknown') {
      out.ignoreUnknown = parseBool(value);
    } else if (Object.hasOwn(STRING_KEYS, key)) {
      const field = STRING_KEYS[key as keyof typeof STRING_KEYS];
      if (value === '') delete out[field];
      else out[field] = value;
    } else {
      unknown.push([key, value]);
    }
  }
  if (unknown.length && !out.ignoreUnknown) {
    throw new CniError(
      ErrorCode.UnsupportedField,
      `CNI_ARGS: unknown args [${unknown.map(([k]) => k).join(',')}]`,
      unknown.map(([k, v]) => `${k}=${v}`).join(';'),
    );
  }
  // fromEntries defines properties, so a key like "__proto__" cannot touch the prototype.
  out.unknown = Object.fromEntries(unknown);
  return out;
}

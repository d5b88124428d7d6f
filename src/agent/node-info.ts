// What the agent reads from a Node object of the API, as plain data. The object is untrusted:
// every field is type-checked here and anything of the wrong shape is simply absent, so the
// rest of the agent never sees raw API JSON. Whether the values make sense is admission.ts's.

/** The Node annotation carrying a node's VTEP MAC, written by that node's agent. */
export const VTEP_MAC_ANNOTATION = 'pier.dev/vtep-mac';

export interface NodeInfo {
  name: string;
  uid: string;
  resourceVersion: string;
  /** metadata.creationTimestamp (RFC 3339); older nodes win conflicts. */
  created: string;
  /** spec.podCIDRs, or [spec.podCIDR] on an API that lacks the list; as written, unparsed. */
  podCIDRs: string[];
  /** status.addresses of type InternalIP, in the API's order. */
  internalIPs: string[];
  /** Every InternalIP and ExternalIP, for "a podCIDR covers a node's address". */
  addresses: string[];
  vtepMac?: string;
  /** status.conditions[type=NetworkUnavailable], if present. */
  networkUnavailable?: { status: string; reason: string };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * One text for a time, whether it came as a Date (the typed client's list) or as RFC 3339 text
 * (a watch event: `2025-01-01T00:00:00Z`): otherwise the same node would look changed between
 * the two, and admission's oldest-first order would compare unlike strings.
 */
function timestamp(v: unknown): string {
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : typeof v === 'string' ? v : '';
}

/**
 * A Node object (from a list, a watch event or the typed client) -> NodeInfo; undefined when it
 * has no name. Accepts both JSON (`creationTimestamp` a string) and the typed client's models
 * (a Date).
 */
export function nodeInfoOf(obj: unknown): NodeInfo | undefined {
  if (!isObject(obj)) return undefined;
  const meta = isObject(obj.metadata) ? obj.metadata : {};
  const spec = isObject(obj.spec) ? obj.spec : {};
  const status = isObject(obj.status) ? obj.status : {};
  const name = str(meta.name);
  if (!name) return undefined;
  const created = timestamp(meta.creationTimestamp);
  const podCIDRs = list(spec.podCIDRs).filter((c): c is string => typeof c === 'string');
  const single = str(spec.podCIDR);
  if (!podCIDRs.length && single) podCIDRs.push(single);
  const addrs = list(status.addresses).filter(isObject);
  const ofType = (...types: string[]) => addrs.filter((a) => types.includes(str(a.type) ?? '')).map((a) => str(a.address)).filter((a): a is string => a !== undefined);
  const annotations = isObject(meta.annotations) ? meta.annotations : {};
  const info: NodeInfo = {
    name,
    uid: str(meta.uid) ?? '',
    resourceVersion: str(meta.resourceVersion) ?? '',
    created,
    podCIDRs,
    internalIPs: ofType('InternalIP'),
    addresses: ofType('InternalIP', 'ExternalIP'),
  };
  const mac = str(annotations[VTEP_MAC_ANNOTATION]);
  if (mac !== undefined) info.vtepMac = mac;
  const cond = list(status.conditions).filter(isObject).find((c) => c.type === 'NetworkUnavailable');
  if (cond) info.networkUnavailable = { status: str(cond.status) ?? '', reason: str(cond.reason) ?? '' };
  return info;
}

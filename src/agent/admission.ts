// Which Nodes the agent acts on. A pure function of the Nodes the API shows, the cluster's
// settings and what was accepted before: every node is checked in a fixed order (oldest
// first, then by name), each against the ones accepted before it, so every agent of the cluster
// reaches the same verdicts and a newcomer can never push out an established node. A node whose
// new state is refused keeps its last accepted state while it still passes against the others:
// bad data changes nothing.
import { containsCidr, parseCidr, parseIp, type Cidr, type Family } from './cidr.ts';
import type { NodeInfo } from './node-info.ts';

/** A node the agent routes to (or, for its own node, writes the conflist for). */
export interface AcceptedNode {
  name: string;
  created: string;
  /** One per family, canonical. */
  podCidrs: Cidr[];
  /** The first InternalIP of each family, canonical text. */
  internalIPs: Partial<Record<Family, string>>;
  /**
   * The VXLAN underlay's family: IPv4 when the node has an IPv4 InternalIP (IPv6 pod traffic
   * rides it too), else IPv6.
   */
  underlayFamily: Family;
  /** Every InternalIP and ExternalIP that parses, canonical. */
  addresses: string[];
  /** The VTEP MAC annotation, lower case, when it is a unicast MAC. */
  vtepMac?: string;
}

export interface ClusterSettings {
  /** --cluster-cidr; empty: no containment check. */
  clusterCidrs: Cidr[];
  /** The families the cluster runs: those of --cluster-cidr, else those of this node's podCIDRs. */
  families: ReadonlySet<Family>;
  /** Literal IPs the API server is reached at (a podCIDR must not cover them). */
  apiServerIps: string[];
}

export interface Refusal {
  node: string;
  reason: string;
  /** The node's last accepted state stays in effect. */
  keptPrevious: boolean;
}

export interface Admission {
  accepted: Map<string, AcceptedNode>;
  refused: Refusal[];
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

/** Not bad data: the controller-manager has not allocated one yet. Logged at info, not warn. */
export const NO_POD_CIDR = 'has no podCIDR yet';

/** Checks one node on its own: syntax, families, cluster CIDR, an InternalIP. */
export function parseNode(n: NodeInfo, cluster: ClusterSettings): { node: AcceptedNode } | { reason: string } {
  if (!n.podCIDRs.length) return { reason: NO_POD_CIDR };
  const cidrs: Cidr[] = [];
  for (const text of n.podCIDRs) {
    const p = parseCidr(text);
    if (!p.ok) return { reason: `podCIDR ${p.error}` };
    if (cidrs.some((c) => c.family === p.value.family)) return { reason: `has two IPv${p.value.family} podCIDRs (${n.podCIDRs.join(', ')})` };
    cidrs.push(p.value);
  }
  const families = new Set(cidrs.map((c) => c.family));
  const missing = [...families].filter((f) => !cluster.families.has(f));
  if (missing.length) {
    const clusterKind = [...cluster.families].map((f) => `IPv${f}`).join('/');
    if (missing.length === families.size) return { reason: `is IPv${[...families].join('/IPv')}-only (podCIDRs ${n.podCIDRs.join(', ')}) but the cluster is ${clusterKind}-only` };
    return { reason: `has an IPv${missing.join('/IPv')} podCIDR but the cluster is ${clusterKind}-only` };
  }
  if (cluster.clusterCidrs.length) {
    for (const c of cidrs) {
      if (!cluster.clusterCidrs.some((cc) => containsCidr(cc, c))) {
        return { reason: `podCIDR ${c.text} lies outside --cluster-cidr ${cluster.clusterCidrs.map((x) => x.text).join(',')}` };
      }
    }
  }
  const internal: Partial<Record<Family, string>> = {};
  for (const text of n.internalIPs) {
    const ip = parseIp(text);
    if (ip) internal[ip.family] ??= ip.text;
  }
  if (!internal[4] && !internal[6]) return { reason: n.internalIPs.length ? `has no InternalIP that parses (${n.internalIPs.join(', ')})` : 'has no InternalIP' };
  const addresses = [...new Set(n.addresses.map((a) => parseIp(a)?.text).filter((a): a is string => a !== undefined))];
  const node: AcceptedNode = { name: n.name, created: n.created, podCidrs: cidrs, internalIPs: internal, underlayFamily: internal[4] ? 4 : 6, addresses };
  const mac = n.vtepMac?.toLowerCase();
  // A unicast MAC only: a multicast one in an FDB entry would flood.
  if (mac && MAC.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00') node.vtepMac = mac;
  return { node };
}

interface Span {
  first: bigint;
  last: bigint;
  node: string;
  text: string;
}

/** The last index in `xs` (sorted by `first`) whose `first` is <= v, or -1. */
function floorIndex(xs: readonly { first: bigint }[], v: bigint): number {
  let lo = 0;
  let hi = xs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid].first <= v) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function insertSorted<T extends { first: bigint }>(xs: T[], x: T): void {
  const at = floorIndex(xs, x.first) + 1;
  xs.splice(at, 0, x);
}

/**
 * The accepted nodes' podCIDRs and addresses, sorted per family, so that checking a node
 * costs a few binary searches instead of a pass over every accepted node (500 nodes: ~10 ms
 * for all of them instead of ~1 s).
 */
export class AdmissionIndex {
  private readonly spans: Record<Family, Span[]> = { 4: [], 6: [] };
  private readonly addrs: Record<Family, Span[]> = { 4: [], 6: [] };
  private readonly apiIps: Array<{ family: Family; value: bigint; text: string }>;

  constructor(cluster: ClusterSettings) {
    this.apiIps = cluster.apiServerIps.map((ip) => parseIp(ip)).filter((a) => a !== undefined);
  }

  add(n: AcceptedNode): void {
    for (const c of n.podCidrs) insertSorted(this.spans[c.family], { first: c.first, last: c.last, node: n.name, text: c.text });
    for (const text of n.addresses) {
      const a = parseIp(text)!;
      insertSorted(this.addrs[a.family], { first: a.value, last: a.value, node: n.name, text: a.text });
    }
  }

  /** Why `node` clashes with the API server, itself or a node added before, if it does. */
  conflict(node: AcceptedNode): string | undefined {
    const own = node.addresses.map((t) => parseIp(t)!);
    for (const c of node.podCidrs) {
      const api = this.apiIps.find((ip) => ip.family === c.family && c.first <= ip.value && ip.value <= c.last);
      if (api) return `podCIDR ${c.text} covers the API server's address ${api.text}`;
      const self = own.find((ip) => ip.family === c.family && c.first <= ip.value && ip.value <= c.last);
      if (self) return `podCIDR ${c.text} covers the node's own address ${self.text}`;
    }
    for (const c of node.podCidrs) {
      // Accepted podCIDRs are disjoint: only the last one starting at or before c's end can overlap.
      const spans = this.spans[c.family];
      const i = floorIndex(spans, c.last);
      if (i >= 0 && spans[i].last >= c.first) return `podCIDR ${c.text} overlaps node ${spans[i].node}'s ${spans[i].text}`;
      const addrs = this.addrs[c.family];
      const j = floorIndex(addrs, c.last);
      if (j >= 0 && addrs[j].first >= c.first) return `podCIDR ${c.text} covers node ${addrs[j].node}'s address ${addrs[j].text}`;
    }
    for (const ip of own) {
      const spans = this.spans[ip.family];
      const i = floorIndex(spans, ip.value);
      if (i >= 0 && spans[i].last >= ip.value) return `address ${ip.text} lies inside node ${spans[i].node}'s podCIDR ${spans[i].text}`;
    }
    return undefined;
  }
}

/** Oldest first, then by name: the order every agent checks nodes in. */
export function admissionOrder(a: { created: string; name: string }, b: { created: string; name: string }): number {
  if (a.created !== b.created) return a.created < b.created ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Decides every node. `previous` is the last admission's accepted map: a node refused now
 * keeps its previous state if that still passes against the nodes accepted before it.
 */
export function admitNodes(nodes: Iterable<NodeInfo>, cluster: ClusterSettings, previous: ReadonlyMap<string, AcceptedNode> = new Map()): Admission {
  const accepted = new Map<string, AcceptedNode>();
  const refused: Refusal[] = [];
  const index = new AdmissionIndex(cluster);
  for (const n of [...nodes].sort(admissionOrder)) {
    const parsed = parseNode(n, cluster);
    const reason = 'reason' in parsed ? parsed.reason : index.conflict(parsed.node);
    if (reason === undefined && 'node' in parsed) {
      accepted.set(n.name, parsed.node);
      index.add(parsed.node);
      continue;
    }
    const prev = previous.get(n.name);
    const keep = prev !== undefined && index.conflict(prev) === undefined;
    if (keep) {
      accepted.set(n.name, prev);
      index.add(prev);
    }
    refused.push({ node: n.name, reason: reason!, keptPrevious: keep });
  }
  return { accepted, refused };
}

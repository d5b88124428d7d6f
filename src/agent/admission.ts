// Which Nodes the agent acts on. A pure function of the Nodes the API shows, the cluster's
// settings and what was accepted before: every node is checked in a fixed order (oldest
// first, then by name), each against the ones accepted before it, so every agent of the cluster
// reaches the same verdicts and a newcomer can never push out an established node. A node whose
// new state is refused keeps its last accepted state while it still passes against the others:
// bad data changes nothing.
import { containsCidr, containsIp, overlaps, parseCidr, parseIp, type Cidr, type Family } from './cidr.ts';
import type { NodeInfo } from './node-info.ts';

/** A node the agent routes to (or, for its own node, writes the conflist for). */
export interface AcceptedNode {
  name: string;
  created: string;
  /** One per family, canonical. */
  podCidrs: Cidr[];
  /** The first InternalIP of each family, canonical text. */
  internalIPs: Partial<Record<Family, string>>;
  /** The family of the node's first InternalIP: its VXLAN underlay. */
  primaryFamily: Family;
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
  let primary: Family | undefined;
  for (const text of n.internalIPs) {
    const ip = parseIp(text);
    if (!ip) continue;
    internal[ip.family] ??= ip.text;
    primary ??= ip.family;
  }
  if (primary === undefined) return { reason: n.internalIPs.length ? `has no InternalIP that parses (${n.internalIPs.join(', ')})` : 'has no InternalIP' };
  const addresses = [...new Set(n.addresses.map((a) => parseIp(a)?.text).filter((a): a is string => a !== undefined))];
  const node: AcceptedNode = { name: n.name, created: n.created, podCidrs: cidrs, internalIPs: internal, primaryFamily: primary, addresses };
  const mac = n.vtepMac?.toLowerCase();
  // A unicast MAC only: a multicast one in an FDB entry would flood.
  if (mac && MAC.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00') node.vtepMac = mac;
  return { node };
}

/** Checks `node` against the nodes accepted before it and the API server's addresses. */
export function conflictOf(node: AcceptedNode, before: Iterable<AcceptedNode>, cluster: ClusterSettings): string | undefined {
  for (const c of node.podCidrs) {
    for (const ip of cluster.apiServerIps) if (containsIp(c, ip)) return `podCIDR ${c.text} covers the API server's address ${ip}`;
    for (const ip of node.addresses) if (containsIp(c, ip)) return `podCIDR ${c.text} covers the node's own address ${ip}`;
  }
  for (const other of before) {
    for (const c of node.podCidrs) {
      const clash = other.podCidrs.find((o) => overlaps(o, c));
      if (clash) return `podCIDR ${c.text} overlaps node ${other.name}'s ${clash.text}`;
      const covered = other.addresses.find((ip) => containsIp(c, ip));
      if (covered) return `podCIDR ${c.text} covers node ${other.name}'s address ${covered}`;
    }
    for (const ip of node.addresses) {
      const inside = other.podCidrs.find((o) => containsIp(o, ip));
      if (inside) return `address ${ip} lies inside node ${other.name}'s podCIDR ${inside.text}`;
    }
  }
  return undefined;
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
  for (const n of [...nodes].sort(admissionOrder)) {
    const parsed = parseNode(n, cluster);
    const reason = 'reason' in parsed ? parsed.reason : conflictOf(parsed.node, accepted.values(), cluster);
    if (reason === undefined && 'node' in parsed) {
      accepted.set(n.name, parsed.node);
      continue;
    }
    const prev = previous.get(n.name);
    const keep = prev !== undefined && conflictOf(prev, accepted.values(), cluster) === undefined;
    if (keep) accepted.set(n.name, prev);
    refused.push({ node: n.name, reason: reason!, keptPrevious: keep });
  }
  return { accepted, refused };
}

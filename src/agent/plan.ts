// The dataplane this node should have, as data: a pure function of the accepted nodes and the
// host's own addresses. Per peer and family: host-gw (a route to the peer's podCIDR via its
// InternalIP) when that InternalIP is on a subnet this host is directly connected to, else the
// VXLAN overlay (flannel's layout): the peer's VTEP IP is its podCIDR's network address, one
// neighbour entry maps it to the peer's VTEP MAC, one FDB entry per peer maps that MAC to the
// peer's underlay IP, and the route is `podCIDR via VTEP-IP dev <vxlan> onlink`.
import { addressAt, containsIp, parseCidr, subnetOf, type Family } from './cidr.ts';
import type { AcceptedNode } from './admission.ts';

export type Backend = 'auto' | 'host-gw' | 'vxlan';

/** An address of one of this host's links (the CNI bridge and the vxlan device left out). */
export interface LocalAddress {
  index: number;
  /** `203.0.113.1/24` */
  cidr: string;
}

export interface DesiredRoute {
  family: Family;
  dst: string;
  gw: string;
  /** The link's ifindex, or the vxlan device (its index is known only to the kernel layer). */
  oif: number | 'vxlan';
  onlink: boolean;
}

export interface PeerFamilyPlan {
  family: Family;
  podCidr: string;
  via: 'host-gw' | 'vxlan';
  gateway: string;
}

export interface PeerPlan {
  name: string;
  routes: PeerFamilyPlan[];
}

export interface DataplanePlan {
  routes: DesiredRoute[];
  /** MAC -> underlay IP, one per VXLAN peer. */
  fdb: Array<{ mac: string; dst: string }>;
  /** VTEP IP -> MAC, one per VXLAN peer and family. */
  neighbours: Array<{ ip: string; mac: string }>;
  /** This node's VTEP addresses for the vxlan device (`10.244.0.0/32`). */
  vtepAddresses: string[];
  vxlan: boolean;
  peers: PeerPlan[];
  /** Peers (or families of peers) that cannot be routed, and why. */
  problems: Array<{ node: string; reason: string }>;
}

/** The VTEP address of a node for one of its podCIDRs: the network address, as flannel does. */
export function vtepIpOf(podCidr: string): string {
  const p = parseCidr(podCidr);
  if (!p.ok) throw new Error(`vtepIpOf: ${p.error}`);
  return addressAt(p.value, 0n);
}

/** The local link through which `ip` is directly reachable (on one of its subnets), if any. */
export function directLink(ip: string, local: readonly LocalAddress[]): number | undefined {
  for (const a of local) {
    if (a.cidr.split('/')[0] === ip) continue;
    const net = subnetOf(a.cidr);
    if (net && containsIp(net, ip)) return a.index;
  }
  return undefined;
}

/**
 * Plans the dataplane. Without an accepted own node there is nothing to plan (the caller then
 * leaves the kernel as it is).
 */
export function planDataplane(self: AcceptedNode, peers: readonly AcceptedNode[], local: readonly LocalAddress[], backend: Backend, ownVtepMac: string): DataplanePlan {
  const plan: DataplanePlan = { routes: [], fdb: [], neighbours: [], vtepAddresses: [], vxlan: backend !== 'host-gw', peers: [], problems: [] };
  if (plan.vxlan) plan.vtepAddresses = self.podCidrs.map((c) => `${c.network}/${c.family === 4 ? 32 : 128}`);
  const underlay = self.underlayFamily;
  const macOwner = new Map<string, string>([[ownVtepMac, self.name]]);
  for (const peer of peers) {
    if (peer.name === self.name) continue;
    const pp: PeerPlan = { name: peer.name, routes: [] };
    let fdbNeeded = false;
    for (const c of peer.podCidrs) {
      if (!self.podCidrs.some((own) => own.family === c.family)) {
        plan.problems.push({ node: peer.name, reason: `its IPv${c.family} podCIDR ${c.text} is not routed: this node has no IPv${c.family} podCIDR` });
        continue;
      }
      const ip = peer.internalIPs[c.family];
      const link = backend !== 'vxlan' && ip ? directLink(ip, local) : undefined;
      if (link !== undefined && ip) {
        plan.routes.push({ family: c.family, dst: c.text, gw: ip, oif: link, onlink: false });
        pp.routes.push({ family: c.family, podCidr: c.text, via: 'host-gw', gateway: ip });
        continue;
      }
      if (backend === 'host-gw') {
        plan.problems.push({ node: peer.name, reason: `its IPv${c.family} InternalIP ${ip ?? '(none)'} is not on a directly connected subnet, and --backend host-gw has no overlay` });
        continue;
      }
      const underlayIp = peer.internalIPs[underlay];
      if (!underlayIp) {
        plan.problems.push({ node: peer.name, reason: `has no IPv${underlay} InternalIP to reach it over the VXLAN underlay` });
        continue;
      }
      if (!peer.vtepMac) {
        plan.problems.push({ node: peer.name, reason: 'has no VTEP MAC annotation yet (its agent publishes it)' });
        continue;
      }
      const owner = macOwner.get(peer.vtepMac);
      if (owner !== undefined && owner !== peer.name) {
        plan.problems.push({ node: peer.name, reason: `its VTEP MAC ${peer.vtepMac} is also ${owner === self.name ? 'this node' : `node ${owner}`}'s` });
        continue;
      }
      macOwner.set(peer.vtepMac, peer.name);
      const vtep = c.network;
      plan.neighbours.push({ ip: vtep, mac: peer.vtepMac });
      plan.routes.push({ family: c.family, dst: c.text, gw: vtep, oif: 'vxlan', onlink: true });
      pp.routes.push({ family: c.family, podCidr: c.text, via: 'vxlan', gateway: vtep });
      fdbNeeded = true;
    }
    if (fdbNeeded) plan.fdb.push({ mac: peer.vtepMac!, dst: peer.internalIPs[underlay]! });
    plan.peers.push(pp);
  }
  return plan;
}

// A route as CNI carries it: in the IPAM config, in results, and as the pod gets it.

export interface CniRoute {
  /** Destination CIDR; the default route is `0.0.0.0/0` or `::/0`. */
  dst: string;
  gw?: string;
  /** mtu, advmss, priority, table and scope are CNI 1.1.0 only. */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

// The NAT side of a command as an interface, so commands stay testable and the nft layer
// plugs in behind it.
import type { PortMapping } from '../runtime-config.ts';

export interface NatNetwork {
  name: string;
  bridge: string;
  /** The pod subnets (CIDRs) of the network. */
  subnets: string[];
  ipMasq: boolean;
  portMappings: boolean;
  /** Pier's nftables table (`nftTable` in the config); default `pier`. */
  table?: string;
}

export interface NatAttachment {
  containerID: string;
  ifname: string;
  /** Pod addresses, `ip/prefix`. */
  ips: string[];
  portMappings: PortMapping[];
}

export interface NatDriver {
  /** True when the network needs nft at all (masquerade or port mappings). */
  needed(net: NatNetwork, att?: NatAttachment): boolean;
  /** Installs the network's objects and the attachment's entries in one transaction. */
  add(net: NatNetwork, att: NatAttachment): Promise<void>;
  /**
   * Removes the attachment's entries (by its key, so no prevResult is needed). `recorded` is what
   * its record says ADD installed, when IPAM reserved those addresses to it (so no other live
   * attachment of the network holds them): the driver may then remove exactly that without
   * reading the ruleset. Without it, the driver finds the entries by key.
   */
  del(net: NatNetwork, key: { containerID: string; ifname: string }, recorded?: NatAttachment): Promise<void>;
  /** Lists what is missing for the attachment. */
  check(net: NatNetwork, att: NatAttachment): Promise<string[]>;
  /** Removes entries of every attachment of the network not in `valid`. */
  gc(net: NatNetwork, valid: Array<{ containerID: string; ifname: string }>): Promise<void>;
  /**
   * Undefined when the network can work, else why not: nft unusable while `need.nat`, or
   * another table's forward chain dropping the bridge's traffic: checked when the network routes
   * (`need.forwarding`), and for any network when bridged traffic goes through netfilter.
   */
  status(net: NatNetwork, need: { nat: boolean; forwarding: boolean }): Promise<string | undefined>;
}

/** A NAT driver for configs that need none; anything asking for NAT through it is refused. */
export const noNat: NatDriver = {
  needed: (net, att) => net.ipMasq || Boolean(att?.portMappings.length),
  add: async () => {
    throw new Error('NAT is not available in this build');
  },
  del: async () => {},
  check: async () => [],
  gc: async () => {},
  status: async (_net, need) => (need.nat ? 'NAT is not available in this build' : undefined),
};

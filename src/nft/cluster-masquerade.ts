// Pure builders of the cluster agent's masquerade: its own small table, one interval set of
// cluster networks per family, and one rule per family: traffic from this node's podCIDR to an
// address outside the cluster leaves with the node's address; traffic to any pod of the cluster
// (or a cluster CIDR) keeps its source.
//
// Why a table of its own instead of the plugin's `ipMasq`: the plugin masquerades everything
// leaving its own pod subnet, which in a cluster would NAT pod-to-pod traffic to other nodes. So
// the agent writes the conflist with `ipMasq: false` and keeps this table; the plugin's table
// still does hostPort DNAT, hairpin and 127.0.0.1:hostPort masquerade. The set changes by
// elements as nodes come and go (one set, not one rule per node).
import { match, masquerade, payload, prefix, setRef, type Json, type NftCommand } from './expr.ts';
import { parsePrefix, type IpFamily } from './addr.ts';

export const CLUSTER_TABLE = 'pier_cluster';
const FAMILY = 'inet';
const CHAIN = 'postrouting';
const PRIO_SRCNAT = 100;
const MULTICAST: Record<IpFamily, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

export interface ClusterMasquerade {
  table?: string;
  /** This node's podCIDRs: the sources that are masqueraded. */
  localPodCidrs: string[];
  /** Non-overlapping cluster networks (cluster CIDRs and every node's podCIDRs, covered). */
  clusterCidrs: string[];
}

const setName = (f: IpFamily) => `cluster${f}`;
const elem = (cidr: string): Json => {
  const p = parsePrefix(cidr);
  return prefix(p);
};

/**
 * The whole table, idempotently: table, chain and sets are added (a no-op when present), the
 * chain and the sets flushed and refilled, in one transaction, so the table is exactly this
 * afterwards. Used at start-up and whenever the table's state is unknown.
 */
export function buildClusterMasquerade(m: ClusterMasquerade): NftCommand[] {
  const table = m.table ?? CLUSTER_TABLE;
  const base = { family: FAMILY, table };
  const cmds: NftCommand[] = [
    { add: { table: { family: FAMILY, name: table } } },
    { add: { chain: { ...base, name: CHAIN, type: 'nat', hook: 'postrouting', prio: PRIO_SRCNAT, policy: 'accept' } } },
    { add: { set: { ...base, name: setName(4), type: 'ipv4_addr', flags: ['interval'] } } },
    { add: { set: { ...base, name: setName(6), type: 'ipv6_addr', flags: ['interval'] } } },
    { flush: { chain: { ...base, name: CHAIN } } },
    { flush: { set: { ...base, name: setName(4) } } },
    { flush: { set: { ...base, name: setName(6) } } },
  ];
  for (const f of [4, 6] as const) {
    const ip = f === 4 ? 'ip' : 'ip6';
    const local = m.localPodCidrs.map(parsePrefix).filter((p) => p.family === f);
    for (const p of local) {
      cmds.push({
        add: {
          rule: {
            ...base,
            chain: CHAIN,
            expr: [
              match(payload(ip, 'saddr'), '==', prefix(p)),
              match(payload(ip, 'daddr'), '!=', setRef(setName(f))),
              match(payload(ip, 'daddr'), '!=', prefix(parsePrefix(MULTICAST[f]))),
              masquerade,
            ],
          },
        },
      });
    }
  }
  cmds.push(...elementCommands('add', table, m.clusterCidrs));
  return cmds;
}

function elementCommands(verb: 'add' | 'delete', table: string, cidrs: readonly string[]): NftCommand[] {
  const out: NftCommand[] = [];
  for (const f of [4, 6] as const) {
    const els = cidrs.filter((c) => parsePrefix(c).family === f);
    if (els.length) out.push({ [verb]: { element: { family: FAMILY, table, name: setName(f), elem: els.map(elem) } } });
  }
  return out;
}

/**
 * The element changes from `before` to `after` (both non-overlapping, as coverOf makes them):
 * deletions first, so that an added network that contains removed ones does not overlap them
 * within the transaction.
 */
export function buildClusterSetUpdate(table: string | undefined, before: readonly string[], after: readonly string[]): NftCommand[] {
  const t = table ?? CLUSTER_TABLE;
  const a = new Set(after);
  const b = new Set(before);
  return [...elementCommands('delete', t, before.filter((c) => !a.has(c))), ...elementCommands('add', t, after.filter((c) => !b.has(c)))];
}

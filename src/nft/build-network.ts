// Pure builder of a network's NAT objects: base chains, sets and maps, and the chains' rules.
import { createHash } from 'node:crypto';
import { pick } from 'zod/mini';
import { parsePrefix, type IpFamily, type Prefix } from './addr.ts';
import {
  accept, anonSet, concat, ct, dnatMaps, fibDaddrLocal, masquerade, match, meta, payload, prefix, setRef,
  type Json, type NftCommand,
} from './expr.ts';
import { nftNetworkSchema, DEFAULT_TABLE, type NftNetwork } from './model.ts';
import { networkNames, type NetworkNames } from './names.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';

// Hook priorities as numbers: the JSON parser of older nft versions does not know the names.
const PRIO_DSTNAT = -100;
const PRIO_FILTER = 0;
const PRIO_SRCNAT = 100;

const MULTICAST: Record<IpFamily, Prefix> = {
  4: { family: 4, addr: '224.0.0.0', len: 4 },
  6: { family: 6, addr: 'ff00::', len: 8 },
};
const LOOPBACK4: Prefix = { family: 4, addr: '127.0.0.0', len: 8 };

/**
 * The commands that create network `net`'s objects, or bring them up to date, idempotently:
 * `add` of the table, chains and sets is a no-op when they exist; the network's own chains are
 * flushed and refilled in the same transaction, so rules never pile up. Sets and maps, which
 * hold the attachments' elements, are never flushed.
 *
 * Each network has its own base chains (not jump chains from shared ones): networks never need
 * to edit a shared chain, so no network's setup can duplicate or drop another's jump rule, and a
 * network is removed by deleting its own chains. The price is one hook registration per network
 * and chain, which is nothing for the handful of networks a node has.
 */
export function buildNetworkSetup(net: NftNetwork): NftCommand[] {
  const n = checkedNames(net);
  const { family, table } = n;
  const base = { family, table };
  const v4 = prefixesOf(net, 4);
  const v6 = prefixesOf(net, 6);

  const chain = (name: string, type: string, hook: string, prio: number) => ({
    chain: { ...base, name, type, hook, prio, policy: 'accept' },
  });
  const chains = [
    chain(n.chains.postrouting, 'nat', 'postrouting', PRIO_SRCNAT),
    chain(n.chains.prerouting, 'nat', 'prerouting', PRIO_DSTNAT),
    chain(n.chains.output, 'nat', 'output', PRIO_DSTNAT),
    chain(n.chains.forward, 'filter', 'forward', PRIO_FILTER),
  ];
  // Both families' sets always exist, whatever the subnets and flags say, so attachment
  // commands can always name them and switching a flag on later needs no migration.
  const s = n.sets;
  const set = (name: string, type: string | string[]) => ({ set: { ...base, name, type } });
  const map = (name: string, type: string[], data: string) => ({ map: { ...base, name, type, map: data } });
  const ipKey = (a: string) => [a, 'inet_proto', 'inet_service'];
  const anyKey = ['inet_proto', 'inet_service'];
  const sets = [
    set(s.podaddrs4, 'ipv4_addr'),
    set(s.podaddrs6, 'ipv6_addr'),
    set(s.hairpin4, ipKey('ipv4_addr')),
    set(s.hairpin6, ipKey('ipv6_addr')),
    // The DNAT target is kept as two maps (address, port) with the same key, not one map to
    // `ipv4_addr . inet_service`: nft 1.0.6 (Debian 12) cannot express a concatenated map
    // data type in JSON, and silently creates a plain set when given one.
    map(s.hostports4IpAddr, ipKey('ipv4_addr'), 'ipv4_addr'),
    map(s.hostports4IpPort, ipKey('ipv4_addr'), 'inet_service'),
    map(s.hostports4AnyAddr, anyKey, 'ipv4_addr'),
    map(s.hostports4AnyPort, anyKey, 'inet_service'),
    map(s.hostports6IpAddr, ipKey('ipv6_addr'), 'ipv6_addr'),
    map(s.hostports6IpPort, ipKey('ipv6_addr'), 'inet_service'),
    map(s.hostports6AnyAddr, anyKey, 'ipv6_addr'),
    map(s.hostports6AnyPort, anyKey, 'inet_service'),
    // Table-wide claims (every network adds the same two maps): the key a network's own maps
    // use, `0.0.0.0`/`::` standing for any address, mapped to the pod IP. ADD `create`s the
    // claim in its transaction, so the kernel refuses a host port already held in ANY network
    // of the table, atomically and without listing; the pod IP as data lets DEL tell its own
    // claim from a new holder's (see buildAttachmentAdd and buildAttachmentDel).
    map(n.claims.claims4, ipKey('ipv4_addr'), 'ipv4_addr'),
    map(n.claims.claims6, ipKey('ipv6_addr'), 'ipv6_addr'),
  ];

  const rule = (chainName: string, expr: Json[]) => ({ add: { rule: { ...base, chain: chainName, expr } } });
  const rules: NftCommand[] = [];
  for (const [fam, subnets] of [[4, v4], [6, v6]] as const) {
    if (subnets.length) rules.push(...postroutingRules(net, n, fam, subnets).map((e) => rule(n.chains.postrouting, e)));
  }
  if (net.portMappings) {
    for (const chainName of [n.chains.prerouting, n.chains.output]) {
      for (const fam of [4, 6] as const) {
        if (prefixesOf(net, fam).length) rules.push(...dnatRules(n, fam).map((e) => rule(chainName, e)));
      }
    }
  }
  rules.push(...forwardRules(net).map((e) => rule(n.chains.forward, e)));

  const cmds: NftCommand[] = [
    { add: { table: { family, name: table } } },
    ...chains.map((c) => ({ add: c })),
    ...sets.map((x) => ({ add: x })),
    ...Object.values(n.chains).map((name) => ({ flush: { chain: { ...base, name } } })),
    ...rules,
  ];
  // The marker set's name carries a hash of everything above: the ADD fast path (elements only,
  // by netlink) touches it, so a missing or different setup (first ADD, a flushed ruleset, a
  // changed config) fails the batch with ENOENT and the full setup is applied instead.
  return [...cmds, { add: { set: { ...base, name: setupMarkerName(n, cmds), type: 'ipv4_addr' } } }];
}

const SETUP_MARKER = /^setup_/;

function setupMarkerName(n: NetworkNames, cmds: NftCommand[]): string {
  const hash = createHash('sha256').update(JSON.stringify(cmds)).digest('hex').slice(0, 8);
  return `setup_${n.suffix}_${hash}`;
}

/** The marker set of a setup built by buildNetworkSetup (the last command). */
export function setupMarkerOf(setup: NftCommand[]): string {
  const last = setup.at(-1) as { add?: { set?: { name?: string } } } | undefined;
  const name = last?.add?.set?.name;
  if (!name || !SETUP_MARKER.test(name)) throw new Error('not a network setup built by buildNetworkSetup');
  return name;
}

/** The network's names after validating it (zod; bad CIDRs become code 7). */
export function checkedNames(net: NftNetwork): NetworkNames {
  const parsed = nftNetworkSchema.safeParse(net);
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network for nftables', parsed.error.message);
  }
  net.subnets.forEach(parsePrefix);
  return networkNames(net.name, net.table ?? DEFAULT_TABLE);
}

/**
 * Just the names, for removing elements: DEL and GC must work without knowing the subnets
 * (a delegated IPAM's record may not have them), so only name and table are validated.
 */
export function checkedNamesForDelete(net: Pick<NftNetwork, 'name' | 'table'>): NetworkNames {
  const parsed = pick(nftNetworkSchema, { name: true, table: true }).safeParse(net);
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network for nftables', parsed.error.message);
  }
  return networkNames(net.name, net.table ?? DEFAULT_TABLE);
}

function prefixesOf(net: NftNetwork, family: IpFamily): Prefix[] {
  return net.subnets.map(parsePrefix).filter((p) => p.family === family);
}

function postroutingRules(net: NftNetwork, n: NetworkNames, fam: IpFamily, subnets: Prefix[]): Json[][] {
  const ip = fam === 4 ? 'ip' : 'ip6';
  const podSubnets = anonSet(subnets.map(prefix));
  const out: Json[][] = [];
  if (net.ipMasq) {
    // Pod traffic leaving the pod subnets, except multicast, leaves with the host's address.
    out.push([
      match(payload(ip, 'saddr'), '==', setRef(fam === 4 ? n.sets.podaddrs4 : n.sets.podaddrs6)),
      match(payload(ip, 'daddr'), '!=', podSubnets),
      match(payload(ip, 'daddr'), '!=', prefix(MULTICAST[fam])),
      masquerade,
    ]);
  }
  if (net.portMappings) {
    // Hairpin: a pod that reached a pod (itself or another) through a hostPort must see the
    // reply come back through the host, or it drops the reply from an address it never called.
    // Only destinations that are hostPort targets match, so pod -> Service -> pod traffic DNATed
    // by kube-proxy to other ports keeps its source address.
    out.push([
      match(meta('oifname'), '==', net.bridge),
      match(ct('status'), 'in', 'dnat'),
      match(payload(ip, 'saddr'), '==', podSubnets),
      match(concat(payload(ip, 'daddr'), meta('l4proto'), payload('th', 'dport')), '==',
        setRef(fam === 4 ? n.sets.hairpin4 : n.sets.hairpin6)),
      masquerade,
    ]);
    if (fam === 4) {
      // 127.0.0.1:hostPort from the host (needs route_localnet on the bridge): a pod cannot
      // answer 127.0.0.1, so the source becomes the bridge address. IPv6 has no equivalent:
      // the kernel never routes ::1 off the host.
      out.push([
        match(meta('oifname'), '==', net.bridge),
        match(payload('ip', 'saddr'), '==', prefix(LOOPBACK4)),
        match(ct('status'), 'in', 'dnat'),
        masquerade,
      ]);
    }
  }
  return out;
}

/**
 * hostPort DNAT, for prerouting (from outside and from pods) and output (from the host itself).
 * Two lookups: first the map keyed on the destination address (mappings with a hostIP), then
 * the one for any address. `fib daddr type local` keeps it to traffic addressed to this host.
 */
function dnatRules(n: NetworkNames, fam: IpFamily): Json[][] {
  const ip = fam === 4 ? 'ip' : 'ip6';
  const s = n.sets;
  const l4 = [meta('l4proto'), payload('th', 'dport')];
  const ipKey = concat(payload(ip, 'daddr'), ...l4);
  const anyKey = concat(...l4);
  return [
    [fibDaddrLocal, dnatMaps(ip, ipKey, ...(fam === 4 ? [s.hostports4IpAddr, s.hostports4IpPort] : [s.hostports6IpAddr, s.hostports6IpPort]) as [string, string])],
    [
      // No address in the key, so say which family this rule is for.
      match(meta('nfproto'), '==', fam === 4 ? 'ipv4' : 'ipv6'),
      fibDaddrLocal,
      dnatMaps(ip, anyKey, ...(fam === 4 ? [s.hostports4AnyAddr, s.hostports4AnyPort] : [s.hostports6AnyAddr, s.hostports6AnyPort]) as [string, string]),
    ],
  ];
}

/**
 * Accept pod traffic in this table's forward chain. The policy is accept anyway; the rules say
 * what we expect to pass and count it. They cannot override a drop in another table's forward
 * chain: every base chain on the hook must accept (see forward-check.ts).
 */
function forwardRules(net: NftNetwork): Json[][] {
  return [
    [match(meta('oifname'), '==', net.bridge), match(ct('state'), 'in', ['established', 'related']), accept],
    [match(meta('iifname'), '==', net.bridge), accept],
    [match(meta('oifname'), '==', net.bridge), accept],
  ];
}

// Pure builders of an attachment's set and map elements, and of the transaction document.
import { addrOfCidr, canonicalAddr, familyOf, type IpFamily } from './addr.ts';
import type { NftCommand } from './expr.ts';
import { nftAttachmentSchema, type NftAttachment, type NftElement, type NftNetwork, type PortMapping } from './model.ts';
import { attachmentComment, setNamesOf, type NetworkNames } from './names.ts';
import { checkedNames, checkedNamesForDelete } from './build-network.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';

/** A whole `nft -j -f` input: metainfo first, then the commands, applied as one transaction. */
export interface NftDocument {
  nftables: NftCommand[];
}

/** `{nftables: [{metainfo: {json_schema_version: 1}}, ...cmds]}`. */
export function buildDocument(cmds: NftCommand[]): NftDocument {
  return { nftables: [{ metainfo: { json_schema_version: 1 } }, ...cmds] };
}

/**
 * One element command: `verb` on some entries of one set or map. Both the JSON transaction and
 * the nf_tables netlink batch are made from the same list, so they cannot disagree.
 */
export interface ElementOp {
  verb: 'add' | 'create' | 'delete';
  set: string;
  entries: SetEntry[];
}

/** An element as one set holds it: for a hostport, `half` 0 is its address map, 1 its port map. */
export interface SetEntry {
  el: NftElement;
  half: number;
}

/** The element commands of one CNI command, on one table. */
export interface ElementPlan {
  family: NetworkNames['family'];
  table: string;
  ops: ElementOp[];
}

/**
 * The elements attachment `att` owns in network `net`, each commented with
 * `containerID/ifname`: its pod addresses, and for each port mapping and pod address of a
 * matching family a hostport map entry and a hairpin entry. A mapping without hostIP is made
 * for every family the pod has an address of; one with hostIP only for that family, and it is
 * an error when the pod has no address of it. Identical duplicates are merged.
 */
export function attachmentElements(net: NftNetwork, att: NftAttachment): NftElement[] {
  const parsed = nftAttachmentSchema.safeParse(att);
  if (!parsed.success) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid attachment for nftables', parsed.error.message);
  }
  const comment = attachmentComment(att.key);
  const podIPs = new Map<IpFamily, string>();
  const out: NftElement[] = [];
  for (const cidr of att.ips) {
    const addr = addrOfCidr(cidr);
    const family = familyOf(addr);
    // The first address of a family is the DNAT target (a pod has one per family).
    if (!podIPs.has(family)) podIPs.set(family, addr);
    out.push({ kind: 'podaddr', family, addr, comment });
  }
  for (const pm of att.portMappings) {
    const targets = mappingFamilies(pm).filter((t) => podIPs.has(t.family));
    if (!targets.length) {
      throw new CniError(
        ErrorCode.InvalidConfig,
        `port mapping ${describeMapping(pm)} needs a pod address of IPv${mappingFamilies(pm).map((t) => t.family).join('/IPv')}`,
      );
    }
    for (const { family, hostIP } of targets) {
      const podIP = podIPs.get(family)!;
      const { protocol, hostPort, containerPort } = pm;
      out.push({ kind: 'hostport', family, hostIP, protocol, hostPort, podIP, containerPort, comment });
      out.push({ kind: 'hairpin', family, addr: podIP, protocol, port: containerPort, comment });
    }
  }
  return dedupe(out);
}

/**
 * How `buildAttachmentAdd` treats host ports: `claim` (ADD) takes them exclusively, `restore`
 * (`pier resync`, rebuilding what the records say) adds them idempotently.
 */
export type HostPortMode = 'claim' | 'restore';

/**
 * Commands adding `att`'s elements to `net`'s sets (which `buildNetworkSetup` creates: put both
 * in the same transaction). Pod-address and hairpin elements are added, deleted and added again:
 * IPAM owns the addresses, so an element left behind for the same address by an attachment that
 * never got its DEL is taken over rather than kept under the old comment (plain `add` would keep
 * the old one).
 *
 * In `claim` mode hostport entries and their table-wide claims are `create`d: the kernel fails
 * the whole transaction with EEXIST when another attachment holds the same key in this network
 * or in any network of the table, so ADD needs no listing and no lock to refuse a taken port
 * (the caller lists only after a failure, to name the holder). A mapping on a specific hostIP
 * also creates and deletes again the claim of the same port on any address: that fails exactly
 * when someone holds the port on every address. The reverse (a mapping on any address while
 * someone holds the port on one specific address) is not refused: both then work, the specific
 * one winning on its address. In `restore` mode everything is `add`ed, a no-op where present.
 */
export function buildAttachmentAdd(net: NftNetwork, att: NftAttachment, mode: HostPortMode = 'claim'): NftCommand[] {
  return opsToCommands(planAttachmentAdd(net, att, mode));
}

/** `buildAttachmentAdd`'s commands as plain data, for the JSON and the netlink builders alike. */
export function planAttachmentAdd(net: NftNetwork, att: NftAttachment, mode: HostPortMode = 'claim'): ElementPlan {
  const names = checkedNames(net);
  const elements = attachmentElements(net, att);
  const hostPortVerb = mode === 'claim' ? 'create' : 'add';
  const ops: ElementOp[] = [];
  for (const [set, { kind, entries }] of groupBySet(names, [...elements, ...claimsOf(elements)])) {
    if (kind === 'hostport' || kind === 'claim') ops.push({ verb: hostPortVerb, set, entries });
    else ops.push({ verb: 'add', set, entries }, { verb: 'delete', set, entries }, { verb: 'add', set, entries });
  }
  if (mode === 'claim') {
    for (const [set, { entries }] of groupBySet(names, anyAddressProbes(elements))) {
      ops.push({ verb: 'create', set, entries }, { verb: 'delete', set, entries });
    }
  }
  return { family: names.family, table: names.table, ops };
}

/**
 * Commands removing `elements` from `net`'s sets and the table's claim maps: either as
 * `elementsOfAttachment` lists them from the live table, or as the attachment's record says it
 * made them (`attachmentElements` plus `claimsOf`). Each is added and then deleted, so the
 * transaction succeeds even when an element is already gone (a second DEL, a GC racing a DEL):
 * nft 1.0.6 has no `destroy`. For a map the `add` carries the data we expect (the pod IP, the
 * container port): if a new holder took the key over, its data differs, the kernel fails the
 * transaction with EEXIST and nothing of the new holder's is removed (the caller then falls back
 * to listing, which goes by the comments).
 */
export function buildAttachmentDel(net: Pick<NftNetwork, 'name' | 'table'>, elements: NftElement[]): NftCommand[] {
  return opsToCommands(planAttachmentDel(net, elements));
}

/** `buildAttachmentDel`'s commands as plain data. */
export function planAttachmentDel(net: Pick<NftNetwork, 'name' | 'table'>, elements: NftElement[]): ElementPlan {
  const names = checkedNamesForDelete(net);
  const ops: ElementOp[] = [];
  for (const [set, { entries }] of groupBySet(names, dedupe(elements))) {
    ops.push({ verb: 'add', set, entries }, { verb: 'delete', set, entries });
  }
  return { family: names.family, table: names.table, ops };
}

/** The JSON commands of a plan, one per operation, in its order. */
export function opsToCommands(plan: ElementPlan): NftCommand[] {
  return plan.ops.map(({ verb, set, entries }) => ({
    [verb]: { element: { family: plan.family, table: plan.table, name: set, elem: entries.map((e) => elementJson(e.el)[e.half]) } },
  }));
}

/** The table-wide claim of each hostport element (those whose pod IP is known). */
export function claimsOf(elements: NftElement[]): NftElement[] {
  const out: NftElement[] = [];
  for (const el of elements) {
    if (el.kind !== 'hostport' || el.podIP === null) continue;
    const { family, hostIP, protocol, hostPort, podIP, comment } = el;
    out.push({ kind: 'claim', family, hostIP, protocol, hostPort, podIP, comment });
  }
  return out;
}

/**
 * For each specific-hostIP mapping, the claim of the same port on any address, unless the
 * attachment claims that itself: created and deleted again in ADD's transaction, it fails the
 * transaction exactly when another attachment holds the port on every address.
 */
function anyAddressProbes(elements: NftElement[]): NftElement[] {
  const claims = claimsOf(elements);
  const own = new Set(claims.map(elementKey));
  return dedupe(claims.filter((c) => c.kind === 'claim' && c.hostIP !== null).map((c) => ({ ...c, hostIP: null })))
    .filter((c) => !own.has(elementKey(c)));
}

/**
 * The element as nft's JSON writes it in each of its sets: `{elem: {val, comment}}`, or for a
 * hostport `[key, podIP]` in the address map and `[key, containerPort]` in the port map (a half
 * that is null is left out), for a claim `[hostIP-or-any . protocol . hostPort, podIP]`.
 */
export function elementJson(el: NftElement): unknown[] {
  switch (el.kind) {
    case 'podaddr':
      return [{ elem: { val: el.addr, comment: el.comment } }];
    case 'hairpin':
      return [{ elem: { val: { concat: [el.addr, el.protocol, el.port] }, comment: el.comment } }];
    case 'hostport': {
      const key = { elem: { val: { concat: el.hostIP ? [el.hostIP, el.protocol, el.hostPort] : [el.protocol, el.hostPort] }, comment: el.comment } };
      return [el.podIP === null ? null : [key, el.podIP], el.containerPort === null ? null : [key, el.containerPort]];
    }
    case 'claim': {
      const host = el.hostIP ?? (el.family === 4 ? '0.0.0.0' : '::');
      return [[{ elem: { val: { concat: [host, el.protocol, el.hostPort] }, comment: el.comment } }, el.podIP]];
    }
  }
}

/** A stable identity of an element's key within its set (the data of a map is not part of it). */
export function elementKey(el: NftElement): string {
  switch (el.kind) {
    case 'podaddr':
      return `podaddr${el.family} ${el.addr}`;
    case 'hairpin':
      return `hairpin${el.family} ${el.addr} ${el.protocol} ${el.port}`;
    case 'hostport':
      return `hostport${el.family} ${el.hostIP ?? '*'} ${el.protocol} ${el.hostPort}`;
    case 'claim':
      return `claim${el.family} ${el.hostIP ?? '*'} ${el.protocol} ${el.hostPort}`;
  }
}

/** `8080/tcp on 192.0.2.1` or `8080/tcp` (any address). */
export function describeMapping(pm: { hostPort: number; protocol: string; hostIP?: string | null }): string {
  return `${pm.hostPort}/${pm.protocol}${pm.hostIP ? ` on ${pm.hostIP}` : ''}`;
}

/** The families a mapping applies to, with the host address (null: any) for each. */
function mappingFamilies(pm: PortMapping): { family: IpFamily; hostIP: string | null }[] {
  const hostIP = pm.hostIP?.trim();
  if (!hostIP) return [{ family: 4, hostIP: null }, { family: 6, hostIP: null }];
  const family = familyOf(hostIP);
  const canonical = canonicalAddr(hostIP);
  const any = canonical === '0.0.0.0' || canonical === '::';
  return [{ family, hostIP: any ? null : canonical }];
}

/** Elements grouped by the set (or map) they go to, in a stable order. */
function groupBySet(names: NetworkNames, elements: NftElement[]): Map<string, { kind: NftElement['kind']; entries: SetEntry[] }> {
  const bySet = new Map<string, { kind: NftElement['kind']; entries: SetEntry[] }>();
  for (const el of elements) {
    const sets = setNamesOf(names, el);
    const json = elementJson(el);
    sets.forEach((set, half) => {
      if (json[half] === null) return;
      const group = bySet.get(set) ?? { kind: el.kind, entries: [] };
      group.entries.push({ el, half });
      bySet.set(set, group);
    });
  }
  return bySet;
}

function dedupe(elements: NftElement[]): NftElement[] {
  const seen = new Map<string, NftElement>();
  for (const el of elements) {
    const k = elementKey(el);
    const prev = seen.get(k);
    if (!prev) {
      seen.set(k, el);
    } else if (prev.kind === 'hostport' && el.kind === 'hostport' &&
      (prev.podIP !== el.podIP || prev.containerPort !== el.containerPort)) {
      throw new CniError(
        ErrorCode.InvalidConfig,
        `hostPort ${describeMapping(el)} is mapped twice, to ${prev.containerPort} and ${el.containerPort}`,
      );
    }
  }
  return [...seen.values()];
}

// Tolerant reading of `nft -j list table inet pier`: Pier's own sets, maps and chains, the
// elements each attachment owns, and host ports already taken. Unknown keys and objects are
// skipped: nft's JSON output changes between versions.
import { canonicalAddr, familyOf } from './addr.ts';
import { attachmentElements, describeMapping, elementKey } from './build-attachment.ts';
import { DEFAULT_TABLE, TABLE_FAMILY, type AttachmentKey, type NftAttachment, type NftElement, type NftNetwork, type Protocol } from './model.ts';
import { attachmentComment, networkSuffix, parseSetName, type SetNameInfo } from './names.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';

/** An element as found in the table, with the network (suffix) whose set holds it. */
export type ListedElement = NftElement & { suffix: string };

export interface TableState {
  family: string;
  table: string;
  /** Names of our sets and maps, and of every chain, with the rules each chain holds. */
  sets: string[];
  chains: { name: string; hook?: string; type?: string; prio?: number; policy?: string; rules: number }[];
  /** Every element that has a comment, hostport halves joined into one element. */
  elements: ListedElement[];
  /** Elements we could not read (no comment, unknown value shapes): counted, not guessed at. */
  skipped: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads the output of `nft -j list table inet <table>`; objects of any other table are ignored. */
export function parseTableListing(listing: unknown, table: string = DEFAULT_TABLE): TableState {
  const state: TableState = { family: TABLE_FAMILY, table, sets: [], chains: [], elements: [], skipped: 0 };
  const items = isObj(listing) && Array.isArray(listing.nftables) ? listing.nftables : [];
  const halves = new Map<string, ListedElement>();
  const ruleCounts = new Map<string, number>();
  const mine = (o: Obj) => o.table === table && (o.family === undefined || o.family === TABLE_FAMILY);
  for (const item of items) {
    if (!isObj(item)) continue;
    const set = isObj(item.set) ? item.set : isObj(item.map) ? item.map : undefined;
    if (set && mine(set) && typeof set.name === 'string') {
      state.sets.push(set.name);
      const info = parseSetName(set.name);
      if (!info) continue;
      for (const raw of Array.isArray(set.elem) ? set.elem : []) {
        const el = readElement(raw, info, isObj(item.map));
        if (!el) {
          state.skipped++;
        } else if (el.kind === 'hostport') {
          // The address and port maps hold the same key: join the halves into one element.
          const k = `${info.suffix} ${el.comment} ${elementKey(el)}`;
          const prev = halves.get(k);
          if (prev && prev.kind === 'hostport') {
            prev.podIP ??= el.podIP;
            prev.containerPort ??= el.containerPort;
          } else {
            halves.set(k, el);
            state.elements.push(el);
          }
        } else {
          state.elements.push(el);
        }
      }
    } else if (isObj(item.chain) && mine(item.chain) && typeof item.chain.name === 'string') {
      const c = item.chain;
      state.chains.push({
        name: c.name as string,
        ...(typeof c.hook === 'string' && { hook: c.hook }),
        ...(typeof c.type === 'string' && { type: c.type }),
        ...(typeof c.prio === 'number' && { prio: c.prio }),
        ...(typeof c.policy === 'string' && { policy: c.policy }),
        rules: 0,
      });
    } else if (isObj(item.rule) && mine(item.rule)) {
      const chain = String(item.rule.chain);
      ruleCounts.set(chain, (ruleCounts.get(chain) ?? 0) + 1);
    }
  }
  // Counted apart: nothing promises that a chain comes before its rules in the listing.
  for (const c of state.chains) c.rules = ruleCounts.get(c.name) ?? 0;
  return state;
}

/** The elements of network `net` that belong to attachment `key`: what its DEL must remove. */
export function elementsOfAttachment(state: TableState, net: Pick<NftNetwork, 'name'>, key: AttachmentKey): NftElement[] {
  const comment = attachmentComment(key);
  return elementsOfNetwork(state, net).filter((el) => el.comment === comment);
}

/** The elements of network `net`, grouped by comment (`containerID/ifname`): input for GC. */
export function elementsByAttachment(state: TableState, net: Pick<NftNetwork, 'name'>): Map<string, NftElement[]> {
  const out = new Map<string, NftElement[]>();
  for (const el of elementsOfNetwork(state, net)) out.set(el.comment, [...(out.get(el.comment) ?? []), el]);
  return out;
}

/**
 * The network's own elements, and the table-wide claims that go with its hostport entries (same
 * holder and key): a claim names no network, and the same `containerID/ifname` may be attached
 * to two networks, so a claim is the network's only when one of its hostport entries matches.
 */
function elementsOfNetwork(state: TableState, net: Pick<NftNetwork, 'name'>): NftElement[] {
  const suffix = networkSuffix(net.name);
  const own = state.elements.filter((el) => el.suffix === suffix);
  const claimKey = (el: ListedElement) =>
    el.kind === 'hostport' || el.kind === 'claim' ? `${el.comment} ${el.family} ${el.hostIP ?? '*'} ${el.protocol} ${el.hostPort}` : '';
  const held = new Set(own.filter((el) => el.kind === 'hostport').map(claimKey));
  const claims = state.elements.filter((el) => el.kind === 'claim' && held.has(claimKey(el)));
  return [...own, ...claims].map(({ suffix: _s, ...el }) => el as NftElement);
}

/** A requested host port that another attachment already holds. */
export interface HostPortConflict {
  hostPort: number;
  protocol: Protocol;
  /** The requested host address, null for any. */
  hostIP: string | null;
  family: 4 | 6;
  /** `containerID/ifname` of the holder, as its elements' comment says. */
  holder: string;
}

/**
 * Host ports of `att` already mapped by another attachment, in any network of the table (host
 * ports are the host's, not a network's): same family, protocol and port, and the same host
 * address or either side mapping any address.
 */
export function findHostPortConflicts(state: TableState, net: NftNetwork, att: NftAttachment): HostPortConflict[] {
  const comment = attachmentComment(att.key);
  const held = state.elements.filter((el) => el.kind === 'hostport' && el.comment !== comment);
  const out: HostPortConflict[] = [];
  for (const want of attachmentElements(net, att)) {
    if (want.kind !== 'hostport') continue;
    const other = held.find(
      (h) => h.kind === 'hostport' && h.family === want.family && h.protocol === want.protocol &&
        h.hostPort === want.hostPort && (h.hostIP === null || want.hostIP === null || h.hostIP === want.hostIP),
    );
    if (other) {
      out.push({ hostPort: want.hostPort, protocol: want.protocol, hostIP: want.hostIP, family: want.family, holder: other.comment });
    }
  }
  return out;
}

/** Throws CniError 101 naming the holder when `att` asks for a host port someone else has. */
export function assertNoHostPortConflicts(state: TableState, net: NftNetwork, att: NftAttachment): void {
  const conflicts = findHostPortConflicts(state, net, att);
  if (!conflicts.length) return;
  const c = conflicts[0];
  throw new CniError(
    ErrorCode.Conflict,
    `hostPort ${describeMapping(c)} is already mapped by ${c.holder}`,
    conflicts.map((x) => `${describeMapping(x)} (IPv${x.family}) held by ${x.holder}`).join('; '),
  );
}

/** One element of set `info` from nft's JSON, or null if its shape is not one we know. */
function readElement(raw: unknown, info: SetNameInfo, isMap: boolean): ListedElement | null {
  let keyPart = raw;
  let data: unknown;
  if (isMap) {
    if (!Array.isArray(raw) || raw.length !== 2) return null;
    [keyPart, data] = raw;
  }
  // `{elem: {val, comment, ...}}` when an element has a comment, else the bare value.
  const wrapped = isObj(keyPart) && isObj(keyPart.elem) ? keyPart.elem : undefined;
  const val = wrapped ? wrapped.val : keyPart;
  const comment = typeof wrapped?.comment === 'string' ? wrapped.comment : undefined;
  if (!comment) return null;
  const parts = isObj(val) && Array.isArray(val.concat) ? val.concat : [val];
  const { family, suffix } = info;
  switch (info.kind) {
    case 'podaddr': {
      const addr = readAddr(parts[0], family);
      return parts.length === 1 && addr ? { kind: 'podaddr', family, addr, comment, suffix } : null;
    }
    case 'hairpin': {
      const [a, p, port] = [readAddr(parts[0], family), readProto(parts[1]), readPort(parts[2])];
      return parts.length === 3 && a && p && port ? { kind: 'hairpin', family, addr: a, protocol: p, port, comment, suffix } : null;
    }
    case 'claim': {
      const [h, p, hostPort, podIP] = [readAddr(parts[0], family), readProto(parts[1]), readPort(parts[2]), readAddr(data, family)];
      if (parts.length !== 3 || !h || !p || !hostPort || !podIP) return null;
      const hostIP = h === '0.0.0.0' || h === '::' ? null : h;
      return { kind: 'claim', family, hostIP, protocol: p, hostPort, podIP, comment, suffix };
    }
    case 'hostport': {
      const rest = info.specificHost ? parts.slice(1) : parts;
      const hostIP = info.specificHost ? readAddr(parts[0], family) : null;
      if (info.specificHost && !hostIP) return null;
      const [p, hostPort] = [readProto(rest[0]), readPort(rest[1])];
      if (rest.length !== 2 || !p || !hostPort) return null;
      const podIP = info.half === 'addr' ? readAddr(data, family) : null;
      const containerPort = info.half === 'port' ? readPort(data) : null;
      if (podIP === null && containerPort === null) return null;
      return { kind: 'hostport', family, hostIP, protocol: p, hostPort, podIP, containerPort, comment, suffix };
    }
  }
}

function readAddr(v: unknown, family: 4 | 6): string | null {
  if (typeof v !== 'string') return null;
  try {
    return familyOf(v) === family ? canonicalAddr(v) : null;
  } catch {
    return null;
  }
}

const PROTO_NUMBERS: Record<number, Protocol> = { 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** `"tcp"`, or the number (6) that some versions print. */
function readProto(v: unknown): Protocol | null {
  if (v === 'tcp' || v === 'udp' || v === 'sctp') return v;
  if (typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v))) return PROTO_NUMBERS[Number(v)] ?? null;
  return null;
}

/** `8080`, or `"8080"`. (Service names appear only with `nft -S`, which we never pass.) */
function readPort(v: unknown): number | null {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : null;
}

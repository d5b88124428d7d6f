// What to change so the kernel matches a plan: a pure diff of the planned routes, neighbour and
// FDB entries and VTEP addresses against what the kernel holds. Only Pier's own objects are
// ever in `kernel` (routes of Pier's protocol, entries and addresses of Pier's vxlan device), so
// nothing else can be deleted. Something equal is left alone (a restart changes nothing a
// packet would notice); something different is replaced in one step, never deleted and re-added.
import type { Family } from './cidr.ts';
import type { DataplanePlan, DesiredRoute } from './plan.ts';

export interface KernelRoute {
  family: Family;
  dst: string;
  gw?: string;
  oif?: number;
  onlink?: boolean;
}

export interface KernelState {
  /** Routes of Pier's protocol in the main table. */
  routes: KernelRoute[];
  /** The vxlan device's ifindex, when it exists. */
  vxlanIndex?: number;
  /** Its FDB entries that have a remote (dst). */
  fdb: Array<{ mac: string; dst?: string; permanent: boolean }>;
  /** Its neighbour entries, both families. */
  neighbours: Array<{ ip: string; mac?: string; permanent: boolean }>;
  /** Its global addresses (`10.244.0.0/32`). */
  addresses: string[];
}

export type Op =
  | { kind: 'route'; verb: 'add' | 'replace' | 'delete'; route: KernelRoute }
  | { kind: 'fdb'; verb: 'replace' | 'delete'; mac: string; dst: string }
  | { kind: 'neigh'; verb: 'replace' | 'delete'; ip: string; mac?: string }
  | { kind: 'addr'; verb: 'add' | 'delete'; cidr: string };

const routeKey = (r: { family: Family; dst: string }) => `${r.family} ${r.dst}`;

function resolve(r: DesiredRoute, vxlanIndex: number | undefined): KernelRoute | undefined {
  if (r.oif === 'vxlan' && vxlanIndex === undefined) return undefined;
  return { family: r.family, dst: r.dst, gw: r.gw, oif: r.oif === 'vxlan' ? vxlanIndex : r.oif, onlink: r.onlink };
}

const sameRoute = (a: KernelRoute, b: KernelRoute) => a.gw === b.gw && a.oif === b.oif && Boolean(a.onlink) === Boolean(b.onlink);

/**
 * The operations, in the order they must be applied: the overlay's FDB and neighbour entries
 * before the routes that use them, new routes before stale ones go, and stale entries last.
 */
export function diffDataplane(plan: DataplanePlan, kernel: KernelState): Op[] {
  const ops: Op[] = [];
  const vx = kernel.vxlanIndex;
  if (vx !== undefined) {
    const haveAddr = new Set(kernel.addresses);
    for (const cidr of plan.vtepAddresses) if (!haveAddr.has(cidr)) ops.push({ kind: 'addr', verb: 'add', cidr });
    const fdb = new Map(kernel.fdb.filter((e) => e.dst && e.permanent).map((e) => [e.mac, e.dst!]));
    for (const e of plan.fdb) if (fdb.get(e.mac) !== e.dst) ops.push({ kind: 'fdb', verb: 'replace', mac: e.mac, dst: e.dst });
    const neigh = new Map(kernel.neighbours.filter((n) => n.permanent).map((n) => [n.ip, n.mac]));
    for (const n of plan.neighbours) if (neigh.get(n.ip) !== n.mac) ops.push({ kind: 'neigh', verb: 'replace', ip: n.ip, mac: n.mac });
  }
  const current = new Map<string, KernelRoute[]>();
  for (const r of kernel.routes) current.set(routeKey(r), [...(current.get(routeKey(r)) ?? []), r]);
  const wanted = new Set<string>();
  const keep = new Set<KernelRoute>();
  for (const d of plan.routes) {
    const want = resolve(d, vx);
    if (!want) continue;
    wanted.add(routeKey(want));
    const have = current.get(routeKey(want)) ?? [];
    const same = have.find((h) => sameRoute(h, want));
    if (same) keep.add(same);
    else {
      // A Pier route to this destination that differs is swapped in place; with none, `add`
      // refuses to displace anybody else's route to the same destination (EEXIST).
      ops.push({ kind: 'route', verb: have.length ? 'replace' : 'add', route: want });
      if (have.length) keep.add(have[0]);
    }
  }
  for (const r of kernel.routes) if (!keep.has(r)) ops.push({ kind: 'route', verb: 'delete', route: r });
  if (vx !== undefined) {
    const wantNeigh = new Set(plan.neighbours.map((n) => n.ip));
    for (const n of kernel.neighbours) if (n.permanent && !wantNeigh.has(n.ip)) ops.push({ kind: 'neigh', verb: 'delete', ip: n.ip });
    const wantFdb = new Map(plan.fdb.map((e) => [e.mac, e.dst]));
    for (const e of kernel.fdb) if (e.dst && e.permanent && wantFdb.get(e.mac) === undefined) ops.push({ kind: 'fdb', verb: 'delete', mac: e.mac, dst: e.dst });
    const wantAddr = new Set(plan.vtepAddresses);
    for (const cidr of kernel.addresses) if (!wantAddr.has(cidr)) ops.push({ kind: 'addr', verb: 'delete', cidr });
  }
  return ops;
}

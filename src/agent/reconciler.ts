// One pass of the agent: from the Nodes the API shows to this node's kernel, nftables table,
// conflist, ready file and Node status. Each pass starts from scratch (admission, plan, a fresh
// read of the kernel, a diff), so it is the same code at start-up, after an event, after an API
// outage and on the periodic resync. Its kernel, nft, file and API sides are injected.
import { admitNodes, NO_POD_CIDR, type AcceptedNode, type ClusterSettings } from './admission.ts';
import { coverOf, type Cidr, type Family } from './cidr.ts';
import { renderConflist, type ConflistSettings } from './conflist.ts';
import { diffDataplane, type KernelState, type Op } from './diff.ts';
import type { Logger } from './log.ts';
import type { Registry } from './metrics.ts';
import type { NodeInfo } from './node-info.ts';
import { planDataplane, type Backend, type DataplanePlan, type LocalAddress } from './plan.ts';
import type { AgentState, AgentStateRoute } from './state.ts';
import { buildClusterMasquerade, buildClusterSetUpdate } from '../nft/cluster-masquerade.ts';
import type { NftCommand } from '../nft/expr.ts';
import type { ApplyReport, VxlanChange, VxlanSettings } from './dataplane.ts';

/** The kernel side (KernelDataplane in production). */
export interface DataplanePort {
  localAddresses(skip: readonly string[]): LocalAddress[];
  mtuOfAddress(ip: string): number | undefined;
  ensureVxlan(s: VxlanSettings): { index: number; change: VxlanChange };
  vxlanIndex(name: string): number | undefined;
  readState(vxlanIndex: number | undefined): KernelState;
  apply(ops: readonly Op[], vxlanIndex: number | undefined): ApplyReport;
  enableForwarding(families: readonly Family[]): void;
  linkName(index: number): string | undefined;
}

/** The Node-writing side of the API (patches of this node only). */
export interface NodeWriter {
  publishVtepMac(node: string, mac: string): Promise<void>;
  setNetworkAvailable(node: string): Promise<void>;
}

export interface ReconcilerSettings {
  nodeName: string;
  clusterCidrs: Cidr[];
  apiServerIps: string[];
  backend: Backend;
  vxlan: { name: string; vni: number; port: number; mac: string };
  mtu?: number;
  conflist: Omit<ConflistSettings, 'mtu'>;
  explicit: { bridge: boolean; mtu: boolean };
  protocol: number;
}

export interface ReconcilerDeps {
  settings: ReconcilerSettings;
  dataplane: DataplanePort;
  /** Applies one nft transaction (nft -j -f in production). */
  applyNft(cmds: NftCommand[]): Promise<void>;
  /** Writes the conflist if its bytes changed; true when written. */
  writeConflist(text: string): boolean;
  /** Creates the ready file (idempotent). */
  markReady(): void;
  log: Logger;
  metrics: Registry;
}

export interface PassResult {
  state: Omit<AgentState, 'version' | 'pid' | 'startedAt' | 'updatedAt' | 'resyncSeconds' | 'api' | 'metricsAddr'>;
  /** API writes this pass wants (done by the caller, which knows whether the API is up). */
  wantVtepMac?: string;
  wantNetworkAvailable: boolean;
  ok: boolean;
}

const RECONCILE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class Reconciler {
  private accepted = new Map<string, AcceptedNode>();
  private logged = new Map<string, string>();
  private masq: string[] | undefined;
  private masqLocal = '';
  private waitingLogged = '';
  /** Kernel refusals logged already: the same one is logged again only after it went away. */
  private failuresLogged = new Set<string>();
  private ready = false;

  constructor(private readonly deps: ReconcilerDeps) {
    const m = deps.metrics;
    m.declare('pier_agent_reconciles_total', 'Reconcile passes, by result', 'counter');
    m.declare('pier_agent_netlink_batches_total', 'Datagrams of netlink requests sent (many requests each)', 'counter');
    m.declare('pier_agent_netlink_requests_total', 'Netlink requests sent', 'counter');
    m.declare('pier_agent_kernel_failures_total', 'Netlink requests the kernel refused', 'counter');
  }

  /** Runs one pass over `nodes` (every Node the API shows). */
  async reconcile(nodes: Iterable<NodeInfo>): Promise<PassResult> {
    const started = performance.now();
    let ok = false;
    try {
      const r = await this.pass([...nodes]);
      ok = r.ok;
      return r;
    } finally {
      const m = this.deps.metrics;
      m.inc('pier_agent_reconciles_total', 'Reconcile passes, by result', { result: ok ? 'ok' : 'error' });
      m.observe('pier_agent_reconcile_duration_seconds', 'Time of one reconcile pass', RECONCILE_BUCKETS, (performance.now() - started) / 1000);
    }
  }

  private cluster(nodes: NodeInfo[]): ClusterSettings {
    const s = this.deps.settings;
    let families = new Set<Family>(s.clusterCidrs.map((c) => c.family));
    if (!families.size) {
      // No --cluster-cidr: the cluster runs the families of this node's podCIDRs.
      const self = nodes.find((n) => n.name === s.nodeName);
      families = new Set(self?.podCIDRs.map((c) => (c.includes(':') ? 6 : 4)) ?? []);
      if (!families.size) families = new Set([4, 6]);
    }
    return { clusterCidrs: s.clusterCidrs, families, apiServerIps: s.apiServerIps };
  }

  private logRefusals(refused: Array<{ node: string; reason: string; keptPrevious: boolean }>): void {
    const now = new Map(refused.map((r) => [r.node, r.reason]));
    for (const r of refused) {
      if (this.logged.get(r.node) === r.reason) continue;
      const fields = { node: r.node, reason: r.reason, ...(r.keptPrevious && { kept: 'its last accepted state' }) };
      if (r.reason === NO_POD_CIDR) this.deps.log.info('node not routed yet', fields);
      else this.deps.log.warn('node refused', fields);
    }
    for (const [node] of this.logged) if (!now.has(node)) this.deps.log.info('node accepted again', { node });
    this.logged = now;
  }

  private async pass(nodes: NodeInfo[]): Promise<PassResult> {
    const { settings: s, dataplane: dp, log, metrics: m } = this.deps;
    const cluster = this.cluster(nodes);
    const adm = admitNodes(nodes, cluster, this.accepted);
    // Nodes gone from the API are gone from `accepted` too: their routes go.
    this.accepted = adm.accepted;
    this.logRefusals(adm.refused);
    m.set('pier_agent_nodes', 'Nodes the API shows, by verdict', adm.accepted.size, { verdict: 'accepted' });
    m.set('pier_agent_nodes', 'Nodes the API shows, by verdict', adm.refused.filter((r) => !r.keptPrevious).length, { verdict: 'refused' });
    const base: PassResult['state'] = {
      node: s.nodeName,
      protocol: s.protocol,
      podCidrs: [],
      ready: this.ready,
      backend: s.backend,
      peers: [],
      routes: [],
      refused: adm.refused.map((r) => ({ node: r.node, reason: r.reason })),
      problems: [],
    };
    const self = adm.accepted.get(s.nodeName);
    if (!self) {
      const own = adm.refused.find((r) => r.node === s.nodeName);
      const waiting = !nodes.some((n) => n.name === s.nodeName) ? `node ${s.nodeName} is not in the API (yet)` : `node ${s.nodeName} ${own?.reason ?? 'is refused'}`;
      if (waiting !== this.waitingLogged) log.info('no conflist and no routing yet; the kernel is left as it is', { why: waiting });
      this.waitingLogged = waiting;
      return { state: { ...base, waiting }, wantNetworkAvailable: false, ok: true };
    }
    this.waitingLogged = '';
    const peers = [...adm.accepted.values()].filter((n) => n.name !== s.nodeName);
    const families = self.podCidrs.map((c) => c.family);

    // The plan, against the host's own addresses (not the bridge's or the overlay's).
    const local = dp.localAddresses([s.conflist.bridge, s.vxlan.name]);
    const plan = planDataplane(self, peers, local, s.backend, s.vxlan.mac);
    const mtu = this.mtu(self);
    let vxlanIndex: number | undefined;
    if (plan.vxlan) {
      try {
        // An IPv6 underlay needs the device bound to this node's IPv6 address (a device without
        // a local address sends over IPv4 only).
        const local = self.underlayFamily === 6 ? self.internalIPs[6] : undefined;
        const v = dp.ensureVxlan({ ...s.vxlan, mtu, ...(local && { local }) });
        vxlanIndex = v.index;
        if (v.change !== 'unchanged') log.info(`vxlan device ${v.change}`, { device: s.vxlan.name, vni: s.vxlan.vni, port: s.vxlan.port, mac: s.vxlan.mac, mtu });
      } catch (err) {
        log.error('cannot set up the vxlan device; overlay routes are skipped', { device: s.vxlan.name, error: err });
      }
    } else {
      vxlanIndex = dp.vxlanIndex(s.vxlan.name);
    }
    dp.enableForwarding(families);
    const kernel = dp.readState(vxlanIndex);
    const ops = diffDataplane(plan, kernel);
    let report: ApplyReport = { failures: [], datagrams: 0, messages: 0 };
    if (ops.length) {
      report = dp.apply(ops, vxlanIndex);
      m.inc('pier_agent_netlink_batches_total', 'Datagrams of netlink requests sent (many requests each)', {}, report.datagrams);
      m.inc('pier_agent_netlink_requests_total', 'Netlink requests sent', {}, report.messages);
      const failed = new Set(report.failures.map((f) => f.op));
      const done = ops.filter((o) => !failed.has(o));
      if (done.length) log.info('kernel updated', { ...countOps(done), requests: report.messages, batches: report.datagrams, failed: report.failures.length });
      const now = new Set<string>();
      for (const f of report.failures) {
        m.inc('pier_agent_kernel_failures_total', 'Netlink requests the kernel refused', {});
        const key = `${describeOp(f.op)}: ${f.error.code}`;
        now.add(key);
        if (this.failuresLogged.has(key)) continue;
        const foreign = f.op.kind === 'route' && f.op.verb === 'add' && f.error.code === 'EEXIST';
        log.warn(foreign ? 'a route to this destination exists and is not Pier\'s; left alone' : 'the kernel refused a change', { op: describeOp(f.op), error: f.error.message });
      }
      this.failuresLogged = now;
    } else {
      this.failuresLogged.clear();
    }
    for (const p of plan.problems) {
      const key = `problem:${p.node}`;
      if (this.logged.get(key) !== p.reason) log.warn('peer not routed', { node: p.node, reason: p.reason });
    }
    for (const [k] of this.logged) if (k.startsWith('problem:') && !plan.problems.some((p) => `problem:${p.node}` === k)) this.logged.delete(k);
    for (const p of plan.problems) this.logged.set(`problem:${p.node}`, p.reason);

    const routeGauge = new Map<string, number>();
    for (const pp of plan.peers) for (const r of pp.routes) routeGauge.set(`${r.via} ${r.family}`, (routeGauge.get(`${r.via} ${r.family}`) ?? 0) + 1);
    m.setAll('pier_agent_routes', 'Routes to other nodes\' podCIDRs the agent keeps, by kind and family',
      [...routeGauge].map(([k, value]) => ({ labels: { via: k.split(' ')[0], family: `ipv${k.split(' ')[1]}` }, value })));
    m.set('pier_agent_peers', 'Other nodes this node routes to', plan.peers.filter((p) => p.routes.length).length);

    await this.masquerade(self, adm.accepted, cluster);

    const conflist = renderConflist(self.podCidrs.map((c) => c.text), { ...s.conflist, mtu }, s.explicit);
    for (const n of conflist.notes) log.warn('conflist template overridden', { field: n.field, was: n.was, now: n.now });
    if (this.deps.writeConflist(conflist.text)) {
      m.inc('pier_agent_conflist_writes_total', 'Times the conflist was (re)written');
      log.info('conflist written', { podCIDRs: self.podCidrs.map((c) => c.text), mtu });
    }
    if (!this.ready) {
      this.deps.markReady();
      this.ready = true;
      log.info('node network ready', { peers: plan.peers.length });
    }
    m.set('pier_agent_ready', 'Routes and conflist are in place (1) or not yet (0)', 1);
    return {
      state: {
        ...base,
        ready: true,
        podCidrs: self.podCidrs.map((c) => c.text),
        vxlan: plan.vxlan ? { name: s.vxlan.name, vni: s.vxlan.vni, port: s.vxlan.port, mac: s.vxlan.mac } : undefined,
        mtu,
        peers: plan.peers,
        routes: stateRoutes(plan, vxlanIndex, s.vxlan.name, dp),
        problems: plan.problems,
      },
      wantVtepMac: plan.vxlan && self ? s.vxlan.mac : undefined,
      wantNetworkAvailable: true,
      ok: true,
    };
  }

  /** The pods' MTU: --mtu, else the underlay link's less the VXLAN overhead (none for host-gw). */
  private mtu(self: AcceptedNode): number {
    const s = this.deps.settings;
    if (s.mtu !== undefined) return s.mtu;
    const overhead = s.backend === 'host-gw' ? 0 : self.underlayFamily === 4 ? 50 : 70;
    const underlay = this.deps.dataplane.mtuOfAddress(self.internalIPs[self.underlayFamily]!) ?? 1500;
    return underlay - overhead;
  }

  private async masquerade(self: AcceptedNode, accepted: Map<string, AcceptedNode>, cluster: ClusterSettings): Promise<void> {
    const cover = coverOf([...cluster.clusterCidrs, ...[...accepted.values()].flatMap((n) => n.podCidrs)]).map((c) => c.text);
    const local = self.podCidrs.map((c) => c.text).join(',');
    try {
      if (this.masq === undefined || local !== this.masqLocal) {
        await this.deps.applyNft(buildClusterMasquerade({ localPodCidrs: self.podCidrs.map((c) => c.text), clusterCidrs: cover }));
        this.deps.log.info('masquerade table set up', { cluster: cover });
      } else {
        const update = buildClusterSetUpdate(undefined, this.masq, cover);
        if (!update.length) return;
        await this.deps.applyNft(update);
        this.deps.log.info('cluster set updated', { cluster: cover });
      }
      this.masq = cover;
      this.masqLocal = local;
    } catch (err) {
      // Unknown state (a flushed ruleset, nft missing): the next pass sets the whole table up.
      this.masq = undefined;
      this.deps.metrics.inc('pier_agent_nft_failures_total', 'nft transactions that failed');
      this.deps.log.error('masquerade table not updated', { error: err });
    }
  }

  /** Forgets what it knows of the nft table (the next pass sets it up whole). */
  resetMasquerade(): void {
    this.masq = undefined;
  }
}

function countOps(ops: readonly Op[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const o of ops) c[`${o.kind}_${o.verb}`] = (c[`${o.kind}_${o.verb}`] ?? 0) + 1;
  return c;
}

export function describeOp(o: Op): string {
  switch (o.kind) {
    case 'route':
      return `${o.verb} route ${o.route.dst}${o.route.gw ? ` via ${o.route.gw}` : ''}${o.route.onlink ? ' onlink' : ''}`;
    case 'fdb':
      return `${o.verb} fdb ${o.mac} dst ${o.dst}`;
    case 'neigh':
      return `${o.verb} neighbour ${o.ip}${o.mac ? ` lladdr ${o.mac}` : ''}`;
    case 'addr':
      return `${o.verb} address ${o.cidr}`;
  }
}

function stateRoutes(plan: DataplanePlan, vxlanIndex: number | undefined, vxlanName: string, dp: DataplanePort): AgentStateRoute[] {
  const owner = new Map<string, string>();
  for (const p of plan.peers) for (const r of p.routes) owner.set(r.podCidr, p.name);
  return plan.routes
    .filter((r) => r.oif !== 'vxlan' || vxlanIndex !== undefined)
    .map((r) => ({ family: r.family, dst: r.dst, gw: r.gw, dev: r.oif === 'vxlan' ? vxlanName : (dp.linkName(r.oif) ?? `ifindex ${r.oif}`), onlink: r.onlink, node: owner.get(r.dst) ?? '' }));
}

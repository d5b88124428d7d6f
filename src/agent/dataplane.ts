// The agent's kernel side: reads what it owns (Pier-protocol routes, its vxlan device with that
// device's FDB and neighbour entries and addresses) and the host's own addresses, makes the
// vxlan device, and applies a diff as a few netlink batches. Everything is synchronous and in
// the netns the socket was opened in.
import * as nl from '../netlink/index.ts';
import { IFA_F_NODAD, NUD_PERMANENT, RT_SCOPE_UNIVERSE } from '../netlink/constants.ts';
import { LARGE_BATCH_LIMITS, LARGE_RECEIVE_BUFFER, DEFAULT_BATCH_LIMITS, type BatchLimits, type NlRequest } from '../netlink/request-batch.ts';
import type { KernelState, Op } from './diff.ts';
import type { LocalAddress } from './plan.ts';

export interface VxlanSettings {
  name: string;
  vni: number;
  port: number;
  mtu: number;
  mac: string;
  /** Set for an IPv6 underlay only (see NewVxlan.local). */
  local?: string;
}

export interface ApplyReport {
  failures: Array<{ op: Op; error: nl.SysError }>;
  datagrams: number;
  messages: number;
}

/** What happened to the vxlan device. */
export type VxlanChange = 'created' | 'recreated' | 'updated' | 'unchanged';

export class KernelDataplane {
  private readonly limits: BatchLimits;

  constructor(
    private readonly sock: nl.NetlinkSocket,
    readonly protocol: number,
  ) {
    // Hundreds of ACKs must fit the receive buffer before the first is read.
    this.limits = sock.setReceiveBuffer(LARGE_RECEIVE_BUFFER) ? LARGE_BATCH_LIMITS : DEFAULT_BATCH_LIMITS;
  }

  /** The host's global addresses, except on the links named in `skip` (the bridge, the vxlan device). */
  localAddresses(skip: readonly string[]): LocalAddress[] {
    const skipped = new Set(nl.listLinks(this.sock).filter((l) => skip.includes(l.name)).map((l) => l.index));
    return nl
      .listAddresses(this.sock)
      .filter((a) => a.scope === RT_SCOPE_UNIVERSE && !skipped.has(a.index))
      .map((a) => ({ index: a.index, cidr: a.cidr }));
  }

  /** The MTU of the link that holds `ip`, if any. */
  mtuOfAddress(ip: string): number | undefined {
    const a = nl.listAddresses(this.sock).find((x) => x.ip === ip);
    return a ? nl.getLinkByIndex(this.sock, a.index)?.mtu : undefined;
  }

  /**
   * Makes the vxlan device match `s` and be up; returns its ifindex. A device whose VNI, port,
   * learning or local address differ is recreated (the kernel cannot change them); MTU and MAC
   * are changed in place. A link of that name that is not a vxlan device is left alone: an error.
   */
  ensureVxlan(s: VxlanSettings): { index: number; change: VxlanChange } {
    let link = nl.getLinkByName(this.sock, s.name);
    let change: VxlanChange = 'unchanged';
    if (link && link.kind !== 'vxlan') throw new Error(`a link named ${s.name} exists and is not a vxlan device (${link.kind ?? 'unknown kind'}); Pier leaves it alone`);
    if (link?.vxlan && (link.vxlan.vni !== s.vni || link.vxlan.port !== s.port || link.vxlan.learning || link.vxlan.local !== s.local)) {
      nl.deleteLink(this.sock, link.index, s.name);
      link = undefined;
      change = 'recreated';
    }
    if (!link) {
      nl.createVxlan(this.sock, { name: s.name, vni: s.vni, port: s.port, mtu: s.mtu, mac: s.mac, learning: false, ...(s.local && { local: s.local }) });
      link = nl.getLinkByName(this.sock, s.name);
      if (!link) throw new Error(`${s.name} vanished right after it was created`);
      if (change === 'unchanged') change = 'created';
    } else if (link.mtu !== s.mtu || link.mac !== s.mac) {
      nl.setLink(this.sock, { index: link.index, ...(link.mtu !== s.mtu && { mtu: s.mtu }), ...(link.mac !== s.mac && { mac: s.mac }) }, s.name);
      change = 'updated';
    }
    if (!link.up) nl.setLinkUp(this.sock, link.index);
    return { index: link.index, change };
  }

  /**
   * Forwarding on for `families` (as the plugin does at ADD with isGateway): a node routes its
   * pods' traffic to other nodes. Written only when off, so a restart writes nothing.
   */
  enableForwarding(families: readonly (4 | 6)[]): void {
    for (const f of new Set(families)) {
      const key = f === 4 ? 'net.ipv4.ip_forward' : 'net.ipv6.conf.all.forwarding';
      if (nl.readSysctl(key) !== '1') nl.writeSysctl(key, '1');
    }
  }

  linkName(index: number): string | undefined {
    return nl.getLinkByIndex(this.sock, index)?.name;
  }

  /** The index of the vxlan device, if it exists (and is one). */
  vxlanIndex(name: string): number | undefined {
    const link = nl.getLinkByName(this.sock, name);
    return link?.kind === 'vxlan' ? link.index : undefined;
  }

  /** Everything Pier owns in the kernel. */
  readState(vxlanIndex: number | undefined): KernelState {
    const routes = [4, 6].flatMap((family) => nl.listRoutes(this.sock, { family: family as 4 | 6, protocol: this.protocol }));
    const state: KernelState = {
      routes: routes.map((r) => ({ family: r.family, dst: r.dst, gw: r.gw, oif: r.oif, onlink: Boolean(r.onlink) })),
      fdb: [],
      neighbours: [],
      addresses: [],
    };
    if (vxlanIndex === undefined) return state;
    state.vxlanIndex = vxlanIndex;
    state.fdb = nl.listFdb(this.sock, vxlanIndex).map((e) => ({ mac: e.mac, dst: e.dst, permanent: (e.state & NUD_PERMANENT) !== 0 }));
    state.neighbours = [4, 6].flatMap((family) =>
      nl.listNeighbours(this.sock, { family: family as 4 | 6, index: vxlanIndex }).map((n) => ({ ip: n.ip, mac: n.mac, permanent: (n.state & NUD_PERMANENT) !== 0 })),
    );
    state.addresses = nl.listAddresses(this.sock, { index: vxlanIndex }).filter((a) => a.scope === RT_SCOPE_UNIVERSE).map((a) => a.cidr);
    return state;
  }

  /** Applies `ops` in order, many per datagram; each refused op is reported, the rest take effect. */
  apply(ops: readonly Op[], vxlanIndex: number | undefined): ApplyReport {
    const reqs = ops.map((op) => requestOf(op, vxlanIndex, this.protocol));
    const r = nl.sendRequests(this.sock, reqs, this.limits);
    return { failures: r.failures.map((f) => ({ op: ops[f.index], error: f.error })), datagrams: r.datagrams, messages: r.messages };
  }
}

/** The netlink request of one op. */
export function requestOf(op: Op, vxlanIndex: number | undefined, protocol: number): NlRequest {
  const vx = () => {
    if (vxlanIndex === undefined) throw new Error(`${op.kind} op without a vxlan device`);
    return vxlanIndex;
  };
  switch (op.kind) {
    case 'route': {
      const r = op.route;
      if (op.verb === 'delete') return nl.routeRequest('delete', { dst: r.dst, gw: r.gw, oif: r.oif, protocol });
      return nl.routeRequest(op.verb, { dst: r.dst, gw: r.gw, oif: r.oif, onlink: r.onlink, protocol });
    }
    case 'fdb':
      return nl.fdbRequest(op.verb, { index: vx(), mac: op.mac, dst: op.dst });
    case 'neigh':
      return nl.neighbourRequest(op.verb, { index: vx(), ip: op.ip, ...(op.mac && { mac: op.mac }) });
    case 'addr':
      // No duplicate address detection for the IPv6 VTEP address: it is unique by construction.
      return nl.addressRequest(op.verb, { index: vx(), cidr: op.cidr, flags: op.cidr.includes(':') ? IFA_F_NODAD : 0 });
  }
}

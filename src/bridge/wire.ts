// Wires, verifies and unwires one pod on a bridge: the kernel half of ADD, CHECK and DEL.
import { closeSync } from 'node:fs';
import * as nl from '../netlink/index.ts';
import { errnoOf } from '../netlink/libc.ts';
import { parseCidr } from '../netlink/ip-bytes.ts';
import { ensureBridge, ensureGatewayAddress, enableForwarding } from './bridge.ts';
import { applyPodSysctls, configurePodInterface, missingPodState } from './pod.ts';
import type { CniRoute } from '../base/route.ts';
import { attachHostVeth, createPodVeth, isPair } from './veth.ts';
import type { UndoStack } from './undo.ts';

export interface WireSpec {
  bridge: string;
  netnsPath: string;
  ifname: string;
  mtu?: number;
  mac?: string;
  hairpin: boolean;
  promisc: boolean;
  isolated: boolean;
  enableDad: boolean;
  /** 0 for none; else the port's PVID, untagged. */
  vlan: number;
  vlanTrunk?: number[];
  preserveDefaultVlan: boolean;
  isGateway: boolean;
  forceAddress: boolean;
  /** The pod's addresses with their gateways. */
  ips: Array<{ address: string; gateway?: string }>;
  routes: CniRoute[];
  /** The host end's name, chosen (and recorded) by the caller; another one is taken on a clash. */
  hostVeth?: string;
}

export interface Wired {
  bridge: nl.Link;
  hostVeth: nl.Link;
  podLink: nl.Link;
}

/** Closes sockets and fds opened for one command. */
export class Handles {
  private readonly socks: nl.NetlinkSocket[] = [];
  private readonly fds: number[] = [];
  sock(s: nl.NetlinkSocket): nl.NetlinkSocket {
    this.socks.push(s);
    return s;
  }
  fd(fd: number): number {
    this.fds.push(fd);
    return fd;
  }
  close(): void {
    for (const s of this.socks) s.close();
    for (const fd of this.fds) closeSync(fd);
  }
}

/** The routes the pod gets: the IPAM's, with a missing gateway filled in from its family's IP. */
export function podRoutes(spec: Pick<WireSpec, 'ips' | 'routes'>): CniRoute[] {
  const gwOf = (family: 4 | 6) => spec.ips.find((i) => parseCidr(i.address).family === family && i.gateway)?.gateway;
  return spec.routes.map((r) => (r.gw ? r : { ...r, ...(gwOf(parseCidr(r.dst).family) && { gw: gwOf(parseCidr(r.dst).family) }) }));
}

/** Does every kernel step of ADD, pushing the inverse of each onto `undo`. */
export function wirePod(spec: WireSpec, host: nl.NetlinkSocket, pod: nl.NetlinkSocket, undo: UndoStack, h: Handles): Wired {
  const bridge = ensureBridge(host, {
    name: spec.bridge,
    mtu: spec.mtu,
    promisc: spec.promisc || undefined,
    vlanFiltering: spec.vlan || spec.vlanTrunk?.length ? true : undefined,
  });
  const hostFd = h.fd(nl.openOwnNetnsFd());
  const { hostVeth, podLink } = createPodVeth(pod, host, { ifname: spec.ifname, hostNetnsFd: hostFd, mtu: spec.mtu ?? bridge.mtu, mac: spec.mac, hostName: spec.hostVeth });
  undo.push(`delete veth ${hostVeth.name}`, () => {
    const now = nl.getLinkByIndex(host, hostVeth.index);
    if (now && now.name === hostVeth.name) nl.deleteLink(host, hostVeth.index, hostVeth.name);
  });
  attachHostVeth(host, hostVeth, bridge, { hairpin: spec.hairpin, isolated: spec.isolated });
  if (spec.vlan || spec.vlanTrunk?.length) {
    if (spec.vlan) nl.addBridgeVlan(host, { index: hostVeth.index, vid: spec.vlan, pvid: true, untagged: true });
    for (const vid of spec.vlanTrunk ?? []) nl.addBridgeVlan(host, { index: hostVeth.index, vid });
    if (!spec.preserveDefaultVlan && spec.vlan !== 1 && !spec.vlanTrunk?.includes(1)) {
      try {
        nl.delBridgeVlan(host, { index: hostVeth.index, vid: 1 });
      } catch {
        /* default VLAN not there (default_pvid 0) */
      }
    }
  }
  applyPodSysctls(spec.netnsPath, { ifname: spec.ifname, addresses: spec.ips.map((i) => i.address), routes: [], enableDad: spec.enableDad });
  configurePodInterface(pod, podLink, { ifname: spec.ifname, addresses: spec.ips.map((i) => i.address), routes: podRoutes(spec), enableDad: spec.enableDad });
  if (spec.isGateway) {
    const families = new Set<4 | 6>();
    for (const ip of spec.ips) {
      if (!ip.gateway) continue;
      const { prefix, family } = parseCidr(ip.address);
      families.add(family);
      ensureGatewayAddress(host, bridge, `${ip.gateway}/${prefix}`, spec.forceAddress);
    }
    enableForwarding(families);
  }
  waitOperUp(host, hostVeth.index);
  // Names, indexes and MACs are what the result needs, and none of them changed since creation.
  return { bridge, hostVeth, podLink };
}

const IF_OPER_UP = 6;

/** Waits (bounded, ~1 s) for the host veth to be operationally up, as the reference does. */
function waitOperUp(sock: nl.NetlinkSocket, index: number): void {
  const tick = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 200; i++) {
    const l = nl.getLinkByIndex(sock, index);
    if (!l || l.operstate === IF_OPER_UP) return;
    Atomics.wait(tick, 0, 0, 5);
  }
}

/**
 * Deletes the pod's veth pair if, and only if, it can prove the pair is the pod's own:
 * through the pod netns (the pod link and the host link name each other as peers), or without
 * the netns, by the recorded host veth being a veth port of the network's bridge.
 * Returns what it did, for the log.
 */
export function unwirePod(
  o: { bridge: string; ifname: string; hostVeth?: string; netnsPath?: string },
  host: nl.NetlinkSocket,
  h: Handles,
): string {
  let podLink: nl.Link | undefined;
  if (o.netnsPath) {
    const pod = h.sock(nl.openNetnsSocket(o.netnsPath));
    podLink = nl.getLinkByName(pod, o.ifname);
  }
  let hostLink = o.hostVeth ? nl.getLinkByName(host, o.hostVeth) : undefined;
  if (podLink && !hostLink && podLink.peerIndex) hostLink = nl.getLinkByIndex(host, podLink.peerIndex);
  if (podLink && hostLink) {
    if (!isPair(hostLink, podLink)) return `left ${o.ifname}: it is not the peer of ${hostLink.name}`;
    return deleteVanishing(host, hostLink) ? `deleted ${hostLink.name} and ${o.ifname}` : 'veth already gone';
  }
  if (podLink && !hostLink) return `left ${o.ifname}: its peer is not in this netns`;
  if (!hostLink) return 'veth already gone';
  const bridge = nl.getLinkByName(host, o.bridge);
  if (hostLink.kind === 'veth' && bridge && hostLink.master === bridge.index && hostLink.name === o.hostVeth) {
    return deleteVanishing(host, hostLink) ? `deleted ${hostLink.name} (recorded veth port of ${o.bridge})` : 'veth already gone';
  }
  return `left ${hostLink.name}: not a veth port of ${o.bridge}`;
}

/**
 * Deletes a veth that may vanish by itself meanwhile: the kernel tears down the veths of a
 * deleted netns asynchronously, so one found a moment ago can be gone (ENODEV) when DEL or GC
 * deletes it. False when it was already gone.
 */
function deleteVanishing(host: nl.NetlinkSocket, link: nl.Link): boolean {
  try {
    nl.deleteLink(host, link.index, link.name);
    return true;
  } catch (err) {
    if (err instanceof nl.SysError && err.errno === errnoOf('ENODEV')) return false;
    throw err;
  }
}

/** CHECK's kernel half: returns what is missing or wrong (empty when all is well). */
export function checkPod(
  spec: Pick<WireSpec, 'bridge' | 'ifname' | 'ips' | 'routes'> & { hostVeth?: string },
  host: nl.NetlinkSocket,
  pod: nl.NetlinkSocket,
): string[] {
  const problems: string[] = [];
  const bridge = nl.getLinkByName(host, spec.bridge);
  if (!bridge) problems.push(`bridge ${spec.bridge} is missing`);
  else if (bridge.kind !== 'bridge') problems.push(`${spec.bridge} is not a bridge`);
  const podLink = nl.getLinkByName(pod, spec.ifname);
  if (!podLink) {
    problems.push(`${spec.ifname} is missing in the pod netns`);
    return problems;
  }
  const hostLink = spec.hostVeth ? nl.getLinkByName(host, spec.hostVeth) : podLink.peerIndex ? nl.getLinkByIndex(host, podLink.peerIndex) : undefined;
  if (!hostLink) problems.push(`host veth ${spec.hostVeth ?? '(peer)'} is missing`);
  else if (!isPair(hostLink, podLink)) problems.push(`${hostLink.name} is not the peer of ${spec.ifname}`);
  else if (bridge && hostLink.master !== bridge.index) problems.push(`${hostLink.name} is not attached to ${spec.bridge}`);
  const routes = podRoutes(spec).filter((r) => (r.table ?? 254) === 254);
  problems.push(...missingPodState(pod, podLink, { ifname: spec.ifname, addresses: spec.ips.map((i) => i.address), routes, enableDad: false }));
  return problems;
}

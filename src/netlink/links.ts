// Typed link operations over a NetlinkSocket: bridges, veth pairs, ports, moves, deletes, lookups.
import { SysError, errnoOf } from './libc.ts';
import type { NetlinkSocket } from './socket.ts';
import {
  NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK,
} from './constants.ts';
import {
  buildBridgeVlan, buildLinkDump, buildLinkRef, buildNewBridge, buildNewVeth, buildNewVxlan, buildSetBridge, buildSetBridgePort,
  buildSetLink, decodeLinkMessage, linkFromMessage, type BridgePort, type Link, type NewBridge,
  type NewVeth, type NewVxlan, type SetLink,
} from './link-codec.ts';

export type { Link, NewVxlan, VxlanInfo } from './link-codec.ts';

/** Creates a bridge; throws SysError EEXIST when a link of that name exists. */
export function createBridge(sock: NetlinkSocket, o: NewBridge): void {
  sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, buildNewBridge(o), { object: o.name });
}

/** Turns an existing bridge's VLAN filtering on or off. */
export function setBridgeVlanFiltering(sock: NetlinkSocket, index: number, on: boolean, object = `bridge ifindex ${index}`): void {
  sock.request(RTM_NEWLINK, 0, buildSetBridge({ index, vlanFiltering: on }), { object });
}

/** Creates a veth pair; with `peer.netnsFd` the peer is born inside that netns. */
export function createVethPair(sock: NetlinkSocket, o: NewVeth): void {
  sock.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, buildNewVeth(o), { object: `${o.name}<->${o.peer.name}` });
}

/** The flags of createVxlan's request (what `ip link add` sends). */
export const createVxlanRequestFlags = NLM_F_CREATE | NLM_F_EXCL;

/** Creates a vxlan device; throws SysError EEXIST when a link of that name exists. */
export function createVxlan(sock: NetlinkSocket, o: NewVxlan): void {
  sock.request(RTM_NEWLINK, createVxlanRequestFlags, buildNewVxlan(o), { object: o.name });
}

/** Changes an existing link (name, MTU, MAC, master, up/down, promisc, netns). */
export function setLink(sock: NetlinkSocket, o: SetLink, object = `ifindex ${o.index}`): void {
  sock.request(RTM_NEWLINK, 0, buildSetLink(o), { object });
}

export function setLinkUp(sock: NetlinkSocket, index: number, up = true): void {
  setLink(sock, { index, up });
}

export function setLinkMaster(sock: NetlinkSocket, index: number, master: number): void {
  setLink(sock, { index, master });
}

export function setLinkMtu(sock: NetlinkSocket, index: number, mtu: number): void {
  setLink(sock, { index, mtu });
}

export function setLinkMac(sock: NetlinkSocket, index: number, mac: string): void {
  setLink(sock, { index, mac });
}

export function setLinkName(sock: NetlinkSocket, index: number, name: string): void {
  setLink(sock, { index, name });
}

/** Moves a link into the netns that `netnsFd` refers to. */
export function moveLinkToNetns(sock: NetlinkSocket, index: number, netnsFd: number): void {
  setLink(sock, { index, netnsFd });
}

/** Sets bridge-port options (hairpin, isolation, learning) on a port of a bridge. */
export function setBridgePort(sock: NetlinkSocket, o: BridgePort): void {
  sock.request(RTM_SETLINK, 0, buildSetBridgePort(o), { object: `bridge port ifindex ${o.index}` });
}

/** Adds a VLAN to a bridge port (or to the bridge itself). */
export function addBridgeVlan(sock: NetlinkSocket, o: { index: number; vid: number; pvid?: boolean; untagged?: boolean }): void {
  sock.request(RTM_SETLINK, 0, buildBridgeVlan(o), { object: `vlan ${o.vid} on ifindex ${o.index}` });
}

export function delBridgeVlan(sock: NetlinkSocket, o: { index: number; vid: number }): void {
  sock.request(RTM_DELLINK, 0, buildBridgeVlan(o), { object: `vlan ${o.vid} on ifindex ${o.index}` });
}

/** Deletes a link; deleting one end of a veth deletes both. */
export function deleteLink(sock: NetlinkSocket, index: number, object = `ifindex ${index}`): void {
  sock.request(RTM_DELLINK, 0, buildLinkRef({ index }), { object });
}

function getLink(sock: NetlinkSocket, ref: { index?: number; name?: string }): Link | undefined {
  try {
    const [m] = sock.query(RTM_GETLINK, 0, buildLinkRef(ref), { object: ref.name ?? `ifindex ${ref.index}` });
    return m ? linkFromMessage(decodeLinkMessage(m.payload)) : undefined;
  } catch (err) {
    if (err instanceof SysError && err.errno === errnoOf('ENODEV')) return undefined;
    throw err;
  }
}

export function getLinkByName(sock: NetlinkSocket, name: string): Link | undefined {
  return getLink(sock, { name });
}

export function getLinkByIndex(sock: NetlinkSocket, index: number): Link | undefined {
  return getLink(sock, { index });
}

/** Dumps links, filtered in the kernel by master and/or kind (and again here, for old kernels). */
export function listLinks(sock: NetlinkSocket, filter: { master?: number; kind?: string } = {}): Link[] {
  return sock
    .dump(RTM_GETLINK, buildLinkDump(filter))
    .map((m) => linkFromMessage(decodeLinkMessage(m.payload)))
    .filter((l) => (filter.master === undefined || l.master === filter.master) && (filter.kind === undefined || l.kind === filter.kind));
}

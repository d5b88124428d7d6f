// The host side of the wiring: the bridge itself, its gateway addresses and IP forwarding.
import * as nl from '../netlink/index.ts';
import { errnoOf } from '../netlink/libc.ts';
import { IFA_F_NODAD } from '../netlink/constants.ts';
import { sameSubnet } from './subnet.ts';

export interface BridgeSpec {
  name: string;
  mtu?: number;
  promisc?: boolean;
  vlanFiltering?: boolean;
}

/**
 * Makes sure the bridge exists and is up, and returns it. Concurrent ADDs race to create it:
 * EEXIST means another one won, which is fine as long as what exists is a bridge.
 */
export function ensureBridge(sock: nl.NetlinkSocket, spec: BridgeSpec): nl.Link {
  let br = nl.getLinkByName(sock, spec.name);
  if (!br) {
    try {
      withVlanHint(() => nl.createBridge(sock, { name: spec.name, mtu: spec.mtu, vlanFiltering: spec.vlanFiltering }));
    } catch (err) {
      if (!(err instanceof nl.SysError) || err.errno !== errnoOf('EEXIST')) throw err;
    }
    br = nl.getLinkByName(sock, spec.name);
    if (!br) throw new Error(`bridge ${spec.name} vanished right after it was created`);
    // Pin the MAC to itself: a bridge without an assigned MAC takes the lowest port's, so the
    // gateway's MAC would change as pods come and go and their neighbours' ARP caches go stale.
    if (br.mac) nl.setLinkMac(sock, br.index, br.mac);
    // A bridge must not autoconfigure from router advertisements of pods.
    try {
      nl.writeSysctl(['net', 'ipv6', 'conf', spec.name, 'accept_ra'], '0');
    } catch {
      /* IPv6 disabled on this host */
    }
  }
  if (br.kind !== 'bridge') throw new Error(`${spec.name} exists and is a ${br.kind ?? 'non-bridge'} link, not a bridge`);
  // Also on a bridge that existed before (made by someone else, or by an earlier network
  // without VLANs), as the reference bridge does: without filtering, the port's VLANs are
  // recorded and ignored, and the pod is not isolated. Ports without VLAN settings keep
  // talking untagged on the default VLAN 1.
  if (spec.vlanFiltering && br.vlanFiltering !== true) {
    withVlanHint(() => nl.setBridgeVlanFiltering(sock, br!.index, true, spec.name));
  }
  if (!br.up || (spec.promisc !== undefined && Boolean(br.promiscuity) !== spec.promisc)) {
    nl.setLink(sock, { index: br.index, up: true, promisc: spec.promisc }, spec.name);
  }
  return nl.getLinkByIndex(sock, br.index) ?? br;
}

/** EOPNOTSUPP for VLAN filtering: a kernel built without CONFIG_BRIDGE_VLAN_FILTERING. Say so. */
function withVlanHint(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof nl.SysError) || err.errno !== errnoOf('EOPNOTSUPP')) throw err;
    throw new nl.SysError(err.errno, err.op, err.object, 'this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), which vlan and vlanTrunk need');
  }
}

/**
 * Puts the gateway address on the bridge. With `forceAddress`, other addresses of the same
 * family and subnet are replaced; without it, a different one in the same subnet is an error,
 * as with the reference bridge plugin. Returns true when it added the address.
 */
export function ensureGatewayAddress(
  sock: nl.NetlinkSocket,
  bridge: nl.Link,
  gatewayCidr: string,
  forceAddress: boolean,
): boolean {
  const existing = nl.listAddresses(sock, { index: bridge.index });
  if (existing.some((a) => a.cidr === gatewayCidr)) return false;
  for (const a of existing) {
    if (a.scope !== 0 || !sameSubnet(a.cidr, gatewayCidr)) continue;
    if (!forceAddress) {
      throw new Error(`bridge ${bridge.name} already has ${a.cidr} in the subnet of gateway ${gatewayCidr}; set forceAddress to replace it`);
    }
    nl.deleteAddress(sock, { index: bridge.index, cidr: a.cidr });
  }
  try {
    nl.addAddress(sock, { index: bridge.index, cidr: gatewayCidr, flags: gatewayCidr.includes(':') ? IFA_F_NODAD : 0 });
  } catch (err) {
    // A concurrent ADD put the same address there first.
    if (!(err instanceof nl.SysError) || err.errno !== errnoOf('EEXIST')) throw err;
    return false;
  }
  return true;
}

/** Turns on forwarding for the families in use (isGateway), as the reference plugin does. */
export function enableForwarding(families: ReadonlySet<4 | 6>): void {
  if (families.has(4)) nl.writeSysctl('net.ipv4.ip_forward', '1');
  if (families.has(6)) nl.writeSysctl('net.ipv6.conf.all.forwarding', '1');
}

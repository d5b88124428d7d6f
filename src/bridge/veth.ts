// The pod's veth pair: created from inside the pod netns with the host end born in the host
// netns, attached to the bridge, and later proven to be the pod's own before it is deleted.
import { randomHex } from '../base/random-hex.ts';
import * as nl from '../netlink/index.ts';
import { errnoOf } from '../netlink/libc.ts';

/** `veth` + 8 hex chars: NetworkManager and udev rules ignore `veth*`, as with the reference. */
export function randomHostVethName(): string {
  return `veth${randomHex(8)}`;
}

export interface PodVeth {
  hostVeth: nl.Link;
  podLink: nl.Link;
}

/**
 * Creates `ifname` in the pod netns (through `podSock`) with its peer `veth<8 hex>` born directly
 * in the host netns (`hostNetnsFd`). Retries on a host-side name clash.
 */
export function createPodVeth(
  podSock: nl.NetlinkSocket,
  hostSock: nl.NetlinkSocket,
  o: { ifname: string; hostNetnsFd: number; mtu?: number; mac?: string; hostName?: string },
): PodVeth {
  for (let attempt = 0; ; attempt++) {
    // 2^32 names: a clash is rare, and EEXIST below retries with another one.
    const hostName = attempt === 0 && o.hostName ? o.hostName : randomHostVethName();
    try {
      nl.createVethPair(podSock, {
        name: o.ifname,
        mtu: o.mtu,
        mac: o.mac,
        peer: { name: hostName, netnsFd: o.hostNetnsFd, mtu: o.mtu },
      });
    } catch (err) {
      // EEXIST is either the host name (raced: retry) or ifname in the pod (checked by caller).
      if (err instanceof nl.SysError && err.errno === errnoOf('EEXIST') && attempt < 4 && !nl.getLinkByName(podSock, o.ifname)) continue;
      throw err;
    }
    const hostVeth = nl.getLinkByName(hostSock, hostName);
    const podLink = nl.getLinkByName(podSock, o.ifname);
    if (!hostVeth || !podLink) throw new Error(`veth pair ${o.ifname}/${hostName} not found right after creation`);
    return { hostVeth, podLink };
  }
}

/**
 * True when `hostVeth` (in the host netns) is a veth whose peer is `podLink` (in the pod netns):
 * each end's IFLA_LINK names the other's ifindex. Names alone prove nothing (an operator's
 * `vethXXXX` could carry the same name), so DEL and GC check this before deleting anything.
 */
export function isPair(hostVeth: nl.Link | undefined, podLink: nl.Link | undefined): boolean {
  if (!hostVeth || !podLink) return false;
  return hostVeth.kind === 'veth' && podLink.kind === 'veth' && hostVeth.peerIndex === podLink.index && podLink.peerIndex === hostVeth.index;
}

/** Attaches the host end to the bridge with the port options, then brings it up. */
export function attachHostVeth(
  sock: nl.NetlinkSocket,
  hostVeth: nl.Link,
  bridge: nl.Link,
  o: { hairpin: boolean; isolated: boolean },
): void {
  if (!o.hairpin && !o.isolated) {
    // One request: the kernel enslaves first, then applies the flags.
    nl.setLink(sock, { index: hostVeth.index, master: bridge.index, up: true }, hostVeth.name);
    return;
  }
  // Port options need the port to exist: enslave, set them, then bring the link up.
  nl.setLink(sock, { index: hostVeth.index, master: bridge.index }, hostVeth.name);
  nl.setBridgePort(sock, { index: hostVeth.index, hairpin: o.hairpin || undefined, isolated: o.isolated || undefined });
  nl.setLink(sock, { index: hostVeth.index, up: true }, hostVeth.name);
}

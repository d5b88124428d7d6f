// The pod side of the wiring: interface sysctls, addresses and routes inside the pod netns.
import * as nl from '../netlink/index.ts';
import { errnoOf } from '../netlink/libc.ts';
import { IFA_F_NODAD } from '../netlink/constants.ts';
import { parseCidr } from '../netlink/ip-bytes.ts';
import { networkOf } from './subnet.ts';
import type { CniRoute } from '../base/route.ts';

export interface PodConfig {
  ifname: string;
  /** `ip/prefix` for each address. */
  addresses: string[];
  routes: CniRoute[];
  /** Keep IPv6 duplicate address detection (costs ~2 s per address); off by default. */
  enableDad: boolean;
}

/**
 * Sysctls set before any address: DAD off (unless asked), gratuitous ARP on address changes,
 * and IPv6 addresses kept when the link goes down. Runs inside the pod netns.
 */
export function applyPodSysctls(netnsPath: string, cfg: PodConfig): void {
  nl.inNetns(netnsPath, () => {
    const want: Array<[string[], string]> = [[['net', 'ipv4', 'conf', cfg.ifname, 'arp_notify'], '1']];
    if (cfg.addresses.some((a) => parseCidr(a).family === 6)) {
      if (!cfg.enableDad) want.push([['net', 'ipv6', 'conf', cfg.ifname, 'accept_dad'], '0']);
      want.push([['net', 'ipv6', 'conf', cfg.ifname, 'keep_addr_on_down'], '1']);
    }
    for (const [key, value] of want) {
      try {
        nl.writeSysctl(key, value);
      } catch (err) {
        // IPv6 disabled in the pod: the addresses step will say so if it matters.
        if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err;
      }
    }
  });
}

/** Adds the addresses, brings the link up and adds the routes. */
export function configurePodInterface(sock: nl.NetlinkSocket, link: nl.Link, cfg: PodConfig): void {
  for (const cidr of cfg.addresses) {
    const six = parseCidr(cidr).family === 6;
    nl.addAddress(sock, { index: link.index, cidr, flags: six && !cfg.enableDad ? IFA_F_NODAD : 0 });
  }
  nl.setLink(sock, { index: link.index, up: true }, cfg.ifname);
  for (const r of cfg.routes) {
    try {
      nl.addRoute(sock, { ...r, oif: link.index });
    } catch (err) {
      // The kernel already added the subnet route for an address: same route, nothing to do.
      if (!(err instanceof nl.SysError) || err.errno !== errnoOf('EEXIST')) throw err;
    }
  }
}

/** What CHECK compares: the addresses and routes the pod interface should have, and which are missing. */
export function missingPodState(sock: nl.NetlinkSocket, link: nl.Link, cfg: PodConfig): string[] {
  const missing: string[] = [];
  const have = new Set(nl.listAddresses(sock, { index: link.index }).map((a) => a.cidr));
  for (const a of cfg.addresses) if (!have.has(a)) missing.push(`address ${a}`);
  for (const family of [4, 6] as const) {
    const routes = nl.listRoutes(sock, { family, oif: link.index });
    for (const r of cfg.routes.filter((x) => parseCidr(x.dst).family === family && (x.table ?? 254) === 254)) {
      const found = routes.some((x) => x.dst === normaliseDst(r.dst) && (r.gw ?? undefined) === (x.gw ?? undefined));
      if (!found) missing.push(`route ${r.dst}${r.gw ? ` via ${r.gw}` : ''}`);
    }
  }
  return missing;
}

/** The kernel reports a route's dst as its network in canonical text: compare like that. */
function normaliseDst(dst: string): string {
  return networkOf(dst);
}

// Which host routes a pod subnet would clash with (ignoring the network's own bridge).
import * as nl from '../netlink/index.ts';
import { sameSubnet } from '../bridge/subnet.ts';

export function routeClashes(sock: nl.NetlinkSocket, subnets: string[], bridge: string): Map<string, string[]> {
  const links = nl.listLinks(sock);
  const own = links.find((l) => l.name === bridge)?.index;
  const routes = [...nl.listRoutes(sock, { family: 4 }), ...nl.listRoutes(sock, { family: 6 })];
  const dev = (i?: number) => links.find((l) => l.index === i)?.name ?? '?';
  const out = new Map<string, string[]>();
  for (const subnet of subnets) {
    let clash: nl.Route[];
    try {
      clash = routes.filter((r) => r.oif !== own && r.dst !== '0.0.0.0/0' && r.dst !== '::/0' && !r.dst.startsWith('fe80:') && sameSubnet(r.dst, subnet));
    } catch {
      continue; // not a CIDR: the plugin's config check reports it properly
    }
    if (clash.length) out.set(subnet, clash.map((r) => `${r.dst} dev ${dev(r.oif)}`));
  }
  return out;
}

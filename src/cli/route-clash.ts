// Which host routes a pod subnet would clash with (ignoring the network's own bridge).
import * as nl from '../netlink/index.ts';

/** A route of the host's main tables, as `dst` (`ip/prefix`) and the name of its device. */
export interface HostRoute {
  dst: string;
  dev: string;
}

/** The host's routes a pod subnet could clash with: not the bridge's own, no default, no link-local. */
export function readHostRoutes(sock: nl.NetlinkSocket, bridge: string): HostRoute[] {
  const links = nl.listLinks(sock);
  const own = links.find((l) => l.name === bridge)?.index;
  const routes = [...nl.listRoutes(sock, { family: 4 }), ...nl.listRoutes(sock, { family: 6 })];
  const dev = (i?: number) => links.find((l) => l.index === i)?.name ?? '?';
  return routes
    .filter((r) => r.oif !== own && r.dst !== '0.0.0.0/0' && r.dst !== '::/0' && !r.dst.startsWith('fe80:'))
    .map((r) => ({ dst: r.dst, dev: dev(r.oif) }));
}

/**
 * For each pod subnet that overlaps some of `routes`, those routes as `dst dev NAME`. A subnet
 * that is not an `ip/prefix` is skipped: the plugin's config check reports it properly.
 * base/cidr.ts (ip-cidr) is loaded here, at the first call, not at start-up: no plugin run
 * needs it, and leaving it out of the startup snapshot keeps ip-address, jsbn and sprintf-js
 * out of every run's deserialisation (the bundle keeps them, unevaluated).
 */
export async function routeClashes(subnets: string[], routes: HostRoute[]): Promise<Map<string, string[]>> {
  const { overlaps, parseCidrStrict } = await import('../base/cidr.ts');
  const parsed = routes.map((r) => ({ r, dst: parseCidrStrict(r.dst) }));
  const out = new Map<string, string[]>();
  for (const subnet of subnets) {
    const pod = parseCidrStrict(subnet);
    if (!pod) continue;
    // A route to the subnet's network address alone is no clash: no pod is ever given that
    // address (ranges start one after it), and it is where pier agent's VXLAN device keeps its
    // VTEP address (flannel's layout), which gives IPv6 a /128 kernel route on every such node.
    const networkOnly = `${pod.network.split('/')[0]}/${pod.family === 4 ? 32 : 128}`;
    const clash = parsed.filter((p) => p.dst && p.dst.network !== networkOnly && overlaps(p.dst, pod)).map((p) => `${p.r.dst} dev ${p.r.dev}`);
    if (clash.length) out.set(subnet, clash);
  }
  return out;
}

// `pier explain NAME` / `pier up --explain`: the `ip`, `sysctl` and `nft` commands equivalent
// to what Pier did (or would do) for one attachment, so a learner sees every kernel object.
import { attachmentElements } from '../nft/build-attachment.ts';
import { networkNames, setNamesOf } from '../nft/names.ts';
import type { NftElement } from '../nft/model.ts';

interface Plan {
  netnsName: string;
  ifname: string;
  conf: Record<string, unknown>;
  containerId: string;
  /** Known after ADD; placeholders before. */
  hostVeth?: string;
  ips?: Array<{ address: string; gateway?: string }>;
  routes?: Array<{ dst: string; gw?: string }>;
}

const q = (s: string) => (/^[A-Za-z0-9_./:@,=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function nftElementText(el: NftElement): { key: string; value?: string[] } {
  switch (el.kind) {
    case 'podaddr':
      return { key: el.addr };
    case 'hairpin':
      return { key: `${el.addr} . ${el.protocol} . ${el.port}` };
    case 'hostport':
      return { key: `${el.hostIP ? `${el.hostIP} . ` : ''}${el.protocol} . ${el.hostPort}`, value: [String(el.podIP), String(el.containerPort)] };
    case 'claim':
      // The table-wide claim that makes the kernel refuse a second pod on the same host port.
      return { key: `${el.hostIP ?? (el.family === 4 ? '0.0.0.0' : '::')} . ${el.protocol} . ${el.hostPort}`, value: [el.podIP] };
  }
}

/** The commands, as lines of shell with `#` comments. */
export function explain(p: Plan): string {
  const c = p.conf as {
    name: string; bridge?: string; isGateway?: boolean; isDefaultGateway?: boolean; ipMasq?: boolean; hairpinMode?: boolean;
    portIsolation?: boolean; mtu?: number; enabledad?: boolean; nftTable?: string;
    ipam?: { ranges?: Array<Array<{ subnet: string }>>; subnet?: string };
    runtimeConfig?: { portMappings?: Array<{ hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' | 'sctp'; hostIP?: string }> };
  };
  const br = c.bridge ?? 'cni0';
  const ns = p.netnsName;
  const veth = p.hostVeth ?? 'vethXXXXXXXX';
  const subnets = c.ipam?.ranges?.flatMap((s) => s.map((r) => r.subnet)) ?? (c.ipam?.subnet ? [c.ipam.subnet] : []);
  const ips = p.ips ?? subnets.map((s) => ({ address: `<next free address in ${s}>`, gateway: '<gateway>' }));
  const out: string[] = [];
  const say = (comment: string, ...cmds: string[]) => out.push(`# ${comment}`, ...cmds, '');
  say(`the netns (a runtime makes this; \`pier up\` does when it is missing)`, `ip netns add ${q(ns)}`, `ip -n ${q(ns)} link set lo up`);
  say(
    `the bridge ${br}, once per network; its MAC is pinned so it does not follow its ports`,
    `ip link add ${br} type bridge${c.mtu ? ` mtu ${c.mtu}` : ''}`,
    `ip link set ${br} address "$(cat /sys/class/net/${br}/address)"`,
    `sysctl -w net.ipv6.conf.${br}.accept_ra=0`,
    `ip link set ${br} up`,
  );
  say(
    `the veth pair: ${p.ifname} is made inside the pod netns, its peer ${veth} directly in the host netns`,
    `ip -n ${q(ns)} link add ${p.ifname}${c.mtu ? ` mtu ${c.mtu}` : ''} type veth peer name ${veth} netns 1`,
    `ip link set ${veth} master ${br}`,
    ...(c.hairpinMode ? [`ip link set ${veth} type bridge_slave hairpin on`] : []),
    ...(c.portIsolation ? [`ip link set ${veth} type bridge_slave isolated on`] : []),
    `ip link set ${veth} up`,
  );
  const six = ips.some((i) => i.address.includes(':'));
  say(
    'pod interface settings: gratuitous ARP on changes' + (six ? `, no IPv6 duplicate address detection${c.enabledad ? ' (kept: enabledad)' : ''}` : ''),
    `ip netns exec ${q(ns)} sysctl -w net.ipv4.conf.${p.ifname}.arp_notify=1`,
    ...(six && !c.enabledad ? [`ip netns exec ${q(ns)} sysctl -w net.ipv6.conf.${p.ifname}.accept_dad=0`] : []),
  );
  say(
    'addresses (from pier-ipam), link up, routes',
    ...ips.map((i) => `ip -n ${q(ns)} addr add ${q(i.address)} dev ${p.ifname}${i.address.includes(':') && !c.enabledad ? ' nodad' : ''}`),
    `ip -n ${q(ns)} link set ${p.ifname} up`,
    ...(p.routes ?? []).map((r) => `ip -n ${q(ns)} route add ${r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst}${r.gw ? ` via ${r.gw}` : ''} dev ${p.ifname}`),
  );
  if (c.isGateway || c.isDefaultGateway) {
    say(
      'the gateway address on the bridge, and forwarding on',
      ...ips.filter((i) => i.gateway).map((i) => `ip addr add ${q(`${i.gateway}/${i.address.split('/')[1] ?? '?'}`)} dev ${br}`),
      'sysctl -w net.ipv4.ip_forward=1',
      ...(six ? ['sysctl -w net.ipv6.conf.all.forwarding=1'] : []),
    );
  }
  const ports = c.runtimeConfig?.portMappings ?? [];
  if ((c.ipMasq || ports.length) && p.ips) {
    const table = c.nftTable ?? 'pier';
    const names = networkNames(c.name, table);
    const net = { name: c.name, bridge: br, subnets, ipMasq: Boolean(c.ipMasq), portMappings: true, ...(table !== 'pier' && { table }) };
    const els = attachmentElements(net, { key: { containerID: p.containerId, ifname: p.ifname }, ips: p.ips.map((i) => i.address), portMappings: ports });
    const lines: string[] = [];
    for (const el of els) {
      const t = nftElementText(el);
      setNamesOf(names, el).forEach((set, i) => {
        lines.push(`nft add element inet ${table} ${set} '{ ${t.key} comment "${el.comment}"${t.value ? ` : ${t.value[i]}` : ''} }'`);
      });
    }
    if (ports.length) lines.push(`sysctl -w net.ipv4.conf.${br}.route_localnet=1`);
    say(
      `NAT: the network's chains and sets live in table inet ${table} (see \`nft list table inet ${table}\`); the rule count never grows, each pod only adds set elements:`,
      ...lines,
    );
  }
  return out.join('\n');
}

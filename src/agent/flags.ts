// `pier agent` flags: parsed from argv and the environment into settings, validated before the
// agent touches anything. Pure: the environment and the hostname are parameters.
import { parseCidr, type Cidr } from './cidr.ts';
import { LEVELS, type Level } from './log.ts';
import type { Backend } from './plan.ts';
import { DEFAULT_DATA_DIR } from '../ipam/config.ts';

export interface AgentFlags {
  /** --kubeconfig, else KUBECONFIG, else undefined: the in-cluster service account. */
  kubeconfig?: string;
  nodeName: string;
  cniConfDir: string;
  dataDir: string;
  clusterCidrs: Cidr[];
  metricsAddr: { host: string; port: number } | undefined;
  conflistTemplate?: string;
  bridge: string;
  /** Undefined: the underlay link's MTU, less the VXLAN overhead unless the backend is host-gw. */
  mtu?: number;
  backend: Backend;
  vxlanName: string;
  vxlanVni: number;
  vxlanPort: number;
  cniVersion: string;
  networkName: string;
  runDir: string;
  resyncSeconds: number;
  logLevel: Level;
  /** Which flags were given (a template's values give way to these). */
  explicit: Set<string>;
}

export class FlagError extends Error {
  override readonly name = 'FlagError';
}

interface FlagSpec {
  name: string;
  value: string;
  help: string;
  def?: string;
}

/**
 * The VXLAN UDP port: 8473, next to flannel's and Cilium's 8472 (and Calico's 4789) but not on
 * it, so that Pier's overlay can run beside another one during a migration. IANA has not
 * assigned it.
 */
export const DEFAULT_VXLAN_PORT = 8473;

export const FLAGS: FlagSpec[] = [
  { name: '--kubeconfig', value: 'FILE', help: 'kubeconfig to reach the API server (else $KUBECONFIG, else the in-cluster service account)' },
  { name: '--node-name', value: 'NAME', help: "this node's Node name (else $NODE_NAME, else the hostname)" },
  { name: '--cni-conf-dir', value: 'DIR', help: 'where to write 10-pier.conflist', def: '/etc/cni/net.d' },
  { name: '--data-dir', value: 'DIR', help: "Pier's store (pier-ipam's dataDir in the conflist)", def: DEFAULT_DATA_DIR },
  { name: '--cluster-cidr', value: 'CIDR[,CIDR]', help: 'the cluster pod networks, one per family: podCIDRs outside are refused; traffic to them is not masqueraded (default: the families of this node\'s podCIDRs, no containment check)' },
  { name: '--metrics-addr', value: 'HOST:PORT', help: '/metrics (Prometheus) and /healthz; "off" to serve nothing', def: '127.0.0.1:9478' },
  { name: '--conflist-template', value: 'FILE', help: 'a conflist to start from: its pier entry\'s fields and its other plugins are kept' },
  { name: '--bridge', value: 'NAME', help: 'the pods\' bridge', def: 'cni0' },
  { name: '--mtu', value: 'N', help: 'pod and vxlan MTU (default: the underlay link\'s, less 50 for VXLAN over IPv4, 70 over IPv6)' },
  { name: '--backend', value: 'auto|host-gw|vxlan', help: 'auto: a direct route where the peer shares a subnet, VXLAN otherwise', def: 'auto' },
  { name: '--vxlan-name', value: 'NAME', help: 'the vxlan device', def: 'pier.vxlan' },
  { name: '--vxlan-vni', value: 'N', help: 'the VXLAN network identifier', def: '1' },
  { name: '--vxlan-port', value: 'N', help: 'the VXLAN UDP port', def: String(DEFAULT_VXLAN_PORT) },
  { name: '--cni-version', value: 'V', help: 'cniVersion of the conflist (1.1.0 lets a runtime with libcni >= 1.2 call STATUS)', def: '1.0.0' },
  { name: '--network-name', value: 'NAME', help: 'the network\'s name in the conflist (and its store directory)', def: 'pier' },
  { name: '--run-dir', value: 'DIR', help: 'the agent\'s state file and the ready file STATUS waits for', def: '/run/pier/agent' },
  { name: '--resync-interval', value: 'SECONDS', help: 'how often the kernel is checked against the plan without a change from the API', def: '60' },
  { name: '--log-level', value: 'LEVEL', help: 'debug, info, warn or error (JSON lines on stderr)', def: 'info' },
];

export function agentHelp(version: string): string {
  const rows = FLAGS.map((f) => `  ${`${f.name} ${f.value}`.padEnd(34)} ${f.help}${f.def !== undefined ? ` (default ${f.def})` : ''}`);
  return `pier ${version} agent: route this node's pods to every other node's, from the Kubernetes API

Usage: pier agent [FLAGS]

${rows.join('\n')}
  --help                             this text

Runs until SIGTERM or SIGINT; stopping removes nothing, so pods keep their routes across a
restart. Needs RBAC on nodes: get, list, watch, patch; nodes/status: patch. See the README,
"Kubernetes cluster".
`;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

function int(flag: string, text: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) throw new FlagError(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`);
  return Number(text);
}

function hostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):([0-9]+)$/.exec(text);
  if (!m) throw new FlagError(`--metrics-addr must be HOST:PORT (or [IPv6]:PORT), not ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2], port: int('--metrics-addr port', m[3], 1, 65535) };
}

/** Parses `argv` (after `agent`); returns undefined for --help. */
export function parseAgentFlags(argv: readonly string[], env: Record<string, string | undefined>, hostname: string): AgentFlags | undefined {
  const given = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return undefined;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!FLAGS.some((f) => f.name === name)) throw new FlagError(`unknown flag ${JSON.stringify(arg)} (see pier agent --help)`);
    const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new FlagError(`${name} needs a value`);
    given.set(name, value);
  }
  const get = (name: string) => given.get(name) ?? FLAGS.find((f) => f.name === name)!.def;

  const nodeName = given.get('--node-name') ?? env.NODE_NAME ?? hostname;
  if (!nodeName || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(nodeName)) {
    throw new FlagError(`the node name ${JSON.stringify(nodeName)} is not a valid Node name (set --node-name or NODE_NAME)`);
  }
  const clusterCidrs: Cidr[] = [];
  for (const text of (given.get('--cluster-cidr') ?? '').split(',').filter(Boolean)) {
    const p = parseCidr(text.trim());
    if (!p.ok) throw new FlagError(`--cluster-cidr: ${p.error}`);
    if (clusterCidrs.some((c) => c.family === p.value.family)) throw new FlagError(`--cluster-cidr: one network per family (two IPv${p.value.family})`);
    clusterCidrs.push(p.value);
  }
  const metrics = get('--metrics-addr')!;
  const backend = get('--backend')!;
  if (backend !== 'auto' && backend !== 'host-gw' && backend !== 'vxlan') throw new FlagError(`--backend must be auto, host-gw or vxlan, not ${JSON.stringify(backend)}`);
  const level = get('--log-level')!;
  if (!(LEVELS as readonly string[]).includes(level)) throw new FlagError(`--log-level must be one of ${LEVELS.join(', ')}`);
  for (const f of ['--bridge', '--vxlan-name']) {
    if (!NAME.test(get(f)!)) throw new FlagError(`${f} must be an interface name (1-15 characters of [A-Za-z0-9_.-])`);
  }
  const cniVersion = get('--cni-version')!;
  if (!['0.3.1', '0.4.0', '1.0.0', '1.1.0'].includes(cniVersion)) throw new FlagError(`--cni-version must be 0.3.1, 0.4.0, 1.0.0 or 1.1.0`);
  const networkName = get('--network-name')!;
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(networkName)) throw new FlagError('--network-name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*');
  for (const f of ['--cni-conf-dir', '--data-dir', '--run-dir', '--conflist-template', '--kubeconfig']) {
    const v = given.get(f);
    if (v !== undefined && !v.startsWith('/')) throw new FlagError(`${f} must be an absolute path`);
  }
  const flags: AgentFlags = {
    nodeName,
    cniConfDir: get('--cni-conf-dir')!,
    dataDir: get('--data-dir')!,
    clusterCidrs,
    metricsAddr: metrics === 'off' ? undefined : hostPort(metrics),
    bridge: get('--bridge')!,
    backend,
    vxlanName: get('--vxlan-name')!,
    vxlanVni: int('--vxlan-vni', get('--vxlan-vni')!, 1, 0xffffff),
    vxlanPort: int('--vxlan-port', get('--vxlan-port')!, 1, 65535),
    cniVersion,
    networkName,
    runDir: get('--run-dir')!,
    resyncSeconds: int('--resync-interval', get('--resync-interval')!, 1, 86400),
    logLevel: level as Level,
    explicit: new Set(given.keys()),
  };
  const kubeconfig = given.get('--kubeconfig') ?? env.KUBECONFIG;
  if (kubeconfig) flags.kubeconfig = kubeconfig;
  if (given.has('--conflist-template')) flags.conflistTemplate = given.get('--conflist-template');
  if (given.has('--mtu')) flags.mtu = int('--mtu', given.get('--mtu')!, 576, 65535);
  return flags;
}

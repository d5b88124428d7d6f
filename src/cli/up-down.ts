// `pier up/down/check NAME`: wires a named netns like a container's through a real CNI ADD,
// and undoes it; the state of each `up` is kept so `down` and `explain` know what was done.
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as nl from '../netlink/index.ts';
import { CliError, loadNetworkConf } from './conf-file.ts';
import { runCni } from './run-cni.ts';
import { readHostRoutes, routeClashes } from './route-clash.ts';

export const DEFAULT_STATE_DIR = '/var/lib/pier/up';

export interface UpOptions {
  name: string;
  confFile?: string;
  ports: Array<{ hostPort: number; containerPort: number; protocol: 'tcp' | 'udp' | 'sctp' }>;
  ip?: string;
  ifname: string;
  stateDir: string;
  /** Overrides where records live: pier-ipam's dataDir, or the top-level one with another IPAM. */
  dataDir?: string;
  env: Record<string, string | undefined>;
}

/** What `up` recorded about one named netns. */
export interface UpState {
  name: string;
  netns: string;
  createdNetns: boolean;
  containerId: string;
  ifname: string;
  conf: Record<string, unknown>;
  result: Record<string, unknown>;
  created: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,40}$/;

export function checkName(name: string | undefined): string {
  if (!name) throw new CliError('missing NAME', 'give the netns a name, e.g. `pier up blue`');
  if (!NAME.test(name)) throw new CliError(`invalid name ${JSON.stringify(name)}`, 'use letters, digits, ".", "_" and "-" (at most 41 characters)');
  return name;
}

export function parsePort(spec: string): UpOptions['ports'][number] {
  const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  const hostPort = Number(m?.[1]);
  const containerPort = Number(m?.[2]);
  if (!m || hostPort < 1 || hostPort > 65535 || containerPort < 1 || containerPort > 65535) {
    throw new CliError(`invalid port mapping ${JSON.stringify(spec)}`, 'use HOSTPORT:PORT or HOSTPORT:PORT/udp, ports 1..65535');
  }
  return { hostPort, containerPort, protocol: (m[3]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp' | 'sctp' };
}

function statePath(dir: string, name: string): string {
  return join(dir, `${name}.json`);
}

export function readState(dir: string, name: string): UpState {
  try {
    return JSON.parse(fs.readFileSync(statePath(dir, name), 'utf8')) as UpState;
  } catch {
    throw new CliError(`${name} is not up (no state in ${dir})`, `run \`pier up ${name}\` first, or \`pier ls\` to see what is`);
  }
}

function writeState(dir: string, st: UpState): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${statePath(dir, st.name)}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(st, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, statePath(dir, st.name));
}

/** The config `up` runs with: the file (or default) plus the ports and IP asked for. */
export function upConf(o: Pick<UpOptions, 'confFile' | 'ports' | 'ip' | 'dataDir'>): Record<string, unknown> {
  const conf = loadNetworkConf(o.confFile);
  const ipam = conf.ipam as Record<string, unknown> | undefined;
  if (o.dataDir && ipam?.type === 'pier-ipam') conf.ipam = { ...ipam, dataDir: o.dataDir };
  else if (o.dataDir) conf.dataDir = o.dataDir;
  const caps = { ...(conf.capabilities as Record<string, boolean> | undefined) };
  const rc = { ...(conf.runtimeConfig as Record<string, unknown> | undefined) };
  if (o.ports.length) {
    caps.portMappings = true;
    rc.portMappings = o.ports;
  }
  if (o.ip) {
    caps.ips = true;
    rc.ips = [o.ip];
  }
  return { ...conf, capabilities: caps, runtimeConfig: rc };
}

/** A pod subnet the host already routes elsewhere would make pods unreachable: refuse early. */
async function refuseRouteClash(conf: Record<string, unknown>): Promise<void> {
  const ipam = conf.ipam as { ranges?: Array<Array<{ subnet: string }>>; subnet?: string } | undefined;
  const subnets = ipam?.ranges?.flatMap((s) => s.map((r) => r.subnet)) ?? (ipam?.subnet ? [ipam.subnet] : []);
  const bridge = typeof conf.bridge === 'string' ? conf.bridge : 'cni0';
  const routes = nl.withSocket((s) => readHostRoutes(s, bridge));
  const clashes = await routeClashes(subnets.filter((x) => typeof x === 'string'), routes);
  for (const [subnet, routes] of clashes) {
    throw new CliError(`pod subnet ${subnet} overlaps host route ${routes.join(', ')}`, 'pass a network config with another subnet: pier up NAME -c FILE');
  }
}

export async function up(o: UpOptions): Promise<UpState> {
  const name = checkName(o.name);
  if (fs.existsSync(statePath(o.stateDir, name))) {
    throw new CliError(`${name} is already up`, `\`pier down ${name}\` first, or \`pier check ${name}\``);
  }
  const conf = upConf(o);
  await refuseRouteClash(conf);
  const path = nl.namedNetnsPath(name);
  const createdNetns = !fs.existsSync(path);
  if (createdNetns) {
    nl.createNamedNetns(name);
    // A netns is born with lo down; a learner's ping to 127.0.0.1 should work.
    nl.inNetns(path, () => nl.withSocket((s) => nl.setLinkUp(s, nl.getLinkByName(s, 'lo')!.index)));
  }
  const containerId = `pier-up-${name}`;
  try {
    const result = await runCni({ command: 'ADD', conf, containerId, netns: path, ifname: o.ifname, env: o.env });
    const st: UpState = { name, netns: path, createdNetns, containerId, ifname: o.ifname, conf, result: result ?? {}, created: new Date().toISOString() };
    writeState(o.stateDir, st);
    return st;
  } catch (err) {
    if (createdNetns) nl.deleteNamedNetns(name);
    throw err;
  }
}

export async function down(o: { name: string; stateDir: string; env: Record<string, string | undefined> }): Promise<UpState> {
  const st = readState(o.stateDir, checkName(o.name));
  await runCni({ command: 'DEL', conf: { ...st.conf, prevResult: st.result }, containerId: st.containerId, netns: fs.existsSync(st.netns) ? st.netns : '', ifname: st.ifname, env: o.env });
  if (st.createdNetns) nl.deleteNamedNetns(st.name);
  fs.rmSync(statePath(o.stateDir, st.name), { force: true });
  return st;
}

export async function check(o: { name: string; stateDir: string; env: Record<string, string | undefined> }): Promise<UpState> {
  const st = readState(o.stateDir, checkName(o.name));
  await runCni({ command: 'CHECK', conf: { ...st.conf, prevResult: st.result }, containerId: st.containerId, netns: st.netns, ifname: st.ifname, env: o.env });
  return st;
}

/** Every `up` state in the state dir. */
export function listStates(dir: string): UpState[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: UpState[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(fs.readFileSync(join(dir, n), 'utf8')) as UpState);
    } catch {
      /* a torn state file is ignored; `down` of it says "not up" */
    }
  }
  return out;
}

/** Human summary of what a pod got. */
export function describeUp(st: UpState): string {
  const r = st.result as { ips?: Array<{ address: string; gateway?: string }>; interfaces?: Array<{ name: string; mac?: string }> };
  const lines = [`${st.name}: ${st.ifname} in netns ${st.netns}${st.createdNetns ? ' (created)' : ''}`];
  for (const ip of r.ips ?? []) lines.push(`  address ${ip.address}${ip.gateway ? `  gateway ${ip.gateway}` : ''}`);
  const [bridge, hostVeth] = r.interfaces ?? [];
  if (bridge && hostVeth) lines.push(`  host side ${hostVeth.name} on bridge ${bridge.name}`);
  const ports = ((st.conf.runtimeConfig as { portMappings?: UpOptions['ports'] } | undefined)?.portMappings ?? []);
  for (const p of ports) lines.push(`  port ${p.hostPort}/${p.protocol} on the host -> ${p.containerPort}`);
  const gw = r.ips?.find((i) => i.gateway && !i.address.includes(':'))?.gateway;
  if (gw) lines.push(`  try: ip netns exec ${st.name} ping -c1 ${gw}`);
  return `${lines.join('\n')}\n`;
}

// The human CLI (a subcommand on the command line, or no CNI_* variables at all): wire named
// netns (up/down/check), list, explain, diagnose, and node-level STATUS/GC/resync.
import { PIER_VERSION } from '../version.ts';
import { COMMANDS, DEFAULT_CNI_BIN_DIR, DEFAULT_CONF_DIR, HELP, commandHelp } from './help.ts';
import { DEFAULT_DATA_DIR } from '../ipam/config.ts';
import { listAttachments } from '../ipam/ipam.ts';
import { CliError, findPierConfs, loadNetworkConf } from './conf-file.ts';
import { DEFAULT_STATE_DIR, check, checkName, describeUp, down, listStates, parsePort, readState, up, upConf } from './up-down.ts';
import { explain } from './explain.ts';
import { doctor, formatFindings } from './doctor.ts';
import { runCni } from './run-cni.ts';
import { existsSync } from 'node:fs';
import { resyncCommand } from './resync-command.ts';
import { resolveLogOptions } from '../cni/log.ts';
import { recordsLocation } from './records-location.ts';
import { launchAgent } from './agent-launch.ts';
import { agentFindings, agentHealthy, agentView, formatAgentView } from './agent-status.ts';
import { DEFAULT_RUN_DIR } from '../agent/state.ts';

export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

interface Args {
  positional: string[];
  flags: Map<string, string[]>;
}

/**
 * Every option of every command (help.ts), with whether it takes a value. Any command accepts
 * them all, as before help listed them per command; those a command has no use for are ignored.
 */
const OPTIONS = new Map(Object.values(COMMANDS).flatMap((c) => c.options.flatMap((o) => o.names.map((n) => [n, o.value !== undefined] as const))));
OPTIONS.set('--help', false).set('-h', false);

function parseArgs(argv: string[]): Args {
  const a: Args = { positional: [], flags: new Map() };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const hasValue = OPTIONS.get(arg);
    if (hasValue) {
      value ??= argv[++i];
      if (value === undefined) throw new CliError(`${arg} needs a value`, 'see --help');
      a.flags.set(arg, [...(a.flags.get(arg) ?? []), value]);
    } else if (hasValue === false) a.flags.set(arg, ['1']);
    else if (arg.startsWith('-') && arg !== '-') throw new CliError(`unknown option ${arg}`, 'see --help');
    else a.positional.push(arg);
  }
  return a;
}

const flag = (a: Args, ...names: string[]) => names.map((n) => a.flags.get(n)?.at(-1)).find((v) => v !== undefined);
const all = (a: Args, ...names: string[]) => names.flatMap((n) => a.flags.get(n) ?? []);

/** Runs the CLI; returns the exit code. */
export async function runCli(io: CliIo): Promise<number> {
  const [cmd, ...rest] = io.argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.stdout.write(HELP);
    return cmd ? 0 : 2;
  }
  if (cmd === '--version' || cmd === 'version') {
    io.stdout.write(`pier ${PIER_VERSION}\n`);
    return 0;
  }
  // The agent parses its own flags (pier agent --help) and lives in its own bundle.
  if (cmd === 'agent') return launchAgent(rest, io.env, io);
  const spec = COMMANDS[cmd];
  if (!spec) {
    io.stderr.write(`pier: unknown command ${JSON.stringify(cmd)}\n  hint: run \`pier --help\` for the commands\n`);
    return 2;
  }
  try {
    const a = parseArgs(rest);
    if (a.flags.has('--help') || a.flags.has('-h')) {
      io.stdout.write(commandHelp(spec));
      return 0;
    }
    return await dispatch(cmd, a, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`pier ${cmd}: ${err.message}\n  hint: ${err.hint}\n`);
      return 1;
    }
    const msg = err instanceof Error ? err.message : String(err);
    io.stderr.write(`pier ${cmd}: ${msg}\n  hint: run \`pier doctor\`; details in ${resolveLogOptions(io.env).file}\n`);
    return 1;
  }
}

/** The network config of -c (or the default one), with --data-dir overriding where records live. */
function confFor(a: Args): Record<string, unknown> {
  const conf = loadNetworkConf(flag(a, '-c', '--conf'));
  return withDataDir(conf, flag(a, '--data-dir'));
}

/** --data-dir: pier-ipam's dataDir, or the top-level one that holds records with any other IPAM. */
function withDataDir(conf: Record<string, unknown>, dataDir: string | undefined): Record<string, unknown> {
  if (!dataDir) return conf;
  const ipam = conf.ipam as Record<string, unknown> | undefined;
  if (ipam?.type !== 'pier-ipam') return { ...conf, dataDir };
  return { ...conf, ipam: { ...ipam, dataDir } };
}

async function dispatch(cmd: string, a: Args, io: CliIo): Promise<number> {
  const stateDir = flag(a, '--state-dir') ?? DEFAULT_STATE_DIR;
  const env = io.env;
  switch (cmd) {
    case 'up': {
      const name = checkName(a.positional[0]);
      const opts = {
        name,
        confFile: flag(a, '-c', '--conf'),
        ports: all(a, '-p', '--port').map(parsePort),
        ip: flag(a, '--ip'),
        ifname: flag(a, '--ifname') ?? 'eth0',
        stateDir,
        env,
      };
      if (a.flags.has('--explain')) {
        io.stdout.write(explain({ netnsName: name, ifname: opts.ifname, conf: withDataDir(upConf(opts), flag(a, '--data-dir')), containerId: `pier-up-${name}` }));
        return 0;
      }
      const st = await up({ ...opts, dataDir: flag(a, '--data-dir') });
      io.stdout.write(describeUp(st));
      return 0;
    }
    case 'down': {
      const st = await down({ name: a.positional[0] ?? '', stateDir, env });
      io.stdout.write(`${st.name}: down${st.createdNetns ? ', netns removed' : ''}\n`);
      return 0;
    }
    case 'check': {
      const st = await check({ name: a.positional[0] ?? '', stateDir, env });
      io.stdout.write(`${st.name}: ok (bridge, veth pair, addresses, routes, reservation and NAT entries all present)\n`);
      return 0;
    }
    case 'explain': {
      const st = readState(stateDir, checkName(a.positional[0]));
      const r = st.result as { ips?: Array<{ address: string; gateway?: string }>; routes?: Array<{ dst: string; gw?: string }>; interfaces?: Array<{ name: string }> };
      io.stdout.write(explain({ netnsName: st.name, ifname: st.ifname, conf: st.conf, containerId: st.containerId, hostVeth: r.interfaces?.[1]?.name, ips: r.ips, routes: r.routes }));
      return 0;
    }
    case 'ls':
      return ls(a, io, stateDir);
    case 'doctor': {
      const confs = flag(a, '-c', '--conf') ? [{ conf: confFor(a) }] : [...findPierConfs(flag(a, '--conf-dir') ?? DEFAULT_CONF_DIR), { conf: confFor(a) }];
      const networks = confs.map(({ conf }) => networkOf(conf));
      const findings = await doctor({ networks });
      const agent = agentView(flag(a, '--run-dir') ?? DEFAULT_RUN_DIR);
      if (agent) findings.push(...agentFindings(agent));
      io.stdout.write(formatFindings(findings));
      return findings.some((f) => f.level === 'fail') ? 1 : 0;
    }
    case 'status': {
      // On a cluster node the agent's view comes first, and its conflist is the network checked.
      const agent = agentView(flag(a, '--run-dir') ?? DEFAULT_RUN_DIR);
      if (agent) io.stdout.write(formatAgentView(agent));
      const agentConf = !flag(a, '-c', '--conf') && agent?.state.conflist && existsSync(agent.state.conflist) ? agent.state.conflist : undefined;
      const conf = agentConf ? withDataDir(loadNetworkConf(agentConf), flag(a, '--data-dir')) : confFor(a);
      await runCni({ command: 'STATUS', conf: { ...conf, cniVersion: '1.1.0' }, env });
      io.stdout.write(`${conf.name}: ready\n`);
      return agent && !agentHealthy(agent) ? 1 : 0;
    }
    case 'gc': {
      const conf = confFor(a);
      // Where the plugin will look: a list read elsewhere would be empty, and GC would release
      // every attachment of the network, live ones included.
      const records = recordsLocation(conf);
      const before = listAttachments(records.dataDir).filter((r) => r.network === records.network);
      const live = before.filter((r) => r.netnsPath && existsSync(r.netnsPath)).map((r) => ({ containerID: r.containerID, ifname: r.ifname }));
      await runCni({ command: 'GC', conf: { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': live }, env });
      io.stdout.write(`${conf.name}: kept ${live.length} live attachment(s), released ${before.length - live.length}\n`);
      return 0;
    }
    case 'install-cni': {
      const { defaultSource, installCni } = await import('./install-cni.ts');
      const source = flag(a, '--source') ?? defaultSource();
      if (!source) throw new CliError('this pier runs from source, not as the single executable', 'pass --source dist/pier (npm run build makes it)');
      const dest = flag(a, '--dest') ?? DEFAULT_CNI_BIN_DIR;
      let installed: string[];
      try {
        installed = installCni({ source, dest });
      } catch (err) {
        throw new CliError((err as Error).message, `is ${dest} writable? In the DaemonSet it is the host's /opt/cni/bin, mounted read-write`);
      }
      for (const path of installed) io.stdout.write(`installed ${path}\n`);
      return 0;
    }
    case 'resync': {
      return resyncCommand({ dataDir: flag(a, '--data-dir') ?? DEFAULT_DATA_DIR, table: flag(a, '--table'), prune: a.flags.has('--prune'), io });
    }
  }
  return 2;
}

/** name, bridge, subnets and dataDir of a network config (raw; the plugin validates it). */
function networkOf(conf: Record<string, unknown>) {
  const ipam = (conf.ipam ?? {}) as { type?: string; ranges?: Array<Array<{ subnet: string }>>; subnet?: string; dataDir?: string };
  return {
    name: String(conf.name),
    bridge: typeof conf.bridge === 'string' ? conf.bridge : 'cni0',
    subnets: ipam.ranges?.flatMap((s) => s.map((r) => r.subnet)) ?? (ipam.subnet ? [ipam.subnet] : []),
    dataDir: recordsDirOf(conf),
    needsNat: Boolean(conf.ipMasq) || Boolean((conf.capabilities as Record<string, boolean> | undefined)?.portMappings),
  };
}

/** Where the network's records live; for a config the plugin would refuse, the default. */
function recordsDirOf(conf: Record<string, unknown>): string {
  try {
    return recordsLocation(conf).dataDir;
  } catch {
    return DEFAULT_DATA_DIR;
  }
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function ls(a: Args, io: CliIo, stateDir: string): number {
  const dataDir = flag(a, '--data-dir') ?? DEFAULT_DATA_DIR;
  const ups = new Map(listStates(stateDir).map((s) => [s.containerId, s.name]));
  const rows = listAttachments(dataDir).map((r) => ({
    containerID: r.containerID,
    ifname: r.ifname,
    network: r.network,
    ips: r.ips.length ? r.ips.map((i) => i.address) : ((r.extra.ips as string[] | undefined) ?? []),
    hostVeth: r.hostVeth ?? null,
    netns: r.netnsPath ?? null,
    portMappings: r.portMappings as Array<{ hostPort: number; containerPort: number; protocol: string; hostIP?: string }>,
    created: r.createdAt,
  }));
  if (a.flags.has('--json')) {
    io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (!rows.length) {
    io.stdout.write(`no attachments in ${dataDir}\n`);
    return 0;
  }
  const table = [['NETNS/CONTAINER', 'IFNAME', 'NETWORK', 'ADDRESSES', 'HOST VETH', 'PORTS', 'AGE']];
  for (const r of rows) {
    const who = ups.get(r.containerID) ?? (r.containerID.length > 16 ? r.containerID.slice(0, 12) : r.containerID);
    const ports = r.portMappings.map((p) => `${p.hostIP ? `${p.hostIP}:` : ''}${p.hostPort}->${p.containerPort}/${p.protocol}`).join(',') || '-';
    table.push([who, r.ifname, r.network, r.ips.join(','), r.hostVeth ?? '-', ports, age(r.created)]);
  }
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  for (const row of table) io.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()}\n`);
  return 0;
}


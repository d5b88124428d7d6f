// The human CLI's commands: what each does, the options it takes (with their defaults) and its
// exit status. The parser accepts exactly these options per command, and `--help` prints them.
import { PIER_VERSION } from '../version.ts';
import { DEFAULT_DATA_DIR } from '../ipam/config.ts';
import { DEFAULT_LOG_FILE } from '../cni/log.ts';
import { DEFAULT_STATE_DIR } from './up-down.ts';
import { DEFAULT_RUN_DIR } from '../agent/state.ts';

export const DEFAULT_CONF_DIR = '/etc/cni/net.d';
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';

export interface Option {
  /** Spellings, e.g. `['-c', '--conf']`. */
  names: string[];
  /** The value's placeholder; absent for a switch. */
  value?: string;
  /** What it does, and its default. */
  about: string;
}

export interface Command {
  usage: string;
  about: string;
  options: Option[];
  exit: string;
}

const conf = (what: string): Option => ({
  names: ['-c', '--conf'],
  value: 'FILE',
  about: `network config: a plugin config, or a conflist whose "pier" plugin is used (default: the built-in network pier-default${what})`,
});
const dataDir: Option = {
  names: ['--data-dir'],
  value: 'DIR',
  about: `where the network keeps its records: replaces ipam.dataDir with Pier's IPAM, the top-level dataDir with any other (default: the config's, else ${DEFAULT_DATA_DIR})`,
};
const stateDir: Option = { names: ['--state-dir'], value: 'DIR', about: `where \`pier up\` keeps what it did, for down, check and explain (default ${DEFAULT_STATE_DIR})` };
const FAILED = '1 when it failed (the error, and a hint, on stderr)';
const runDir = (what: string): Option => ({
  names: ['--run-dir'],
  value: 'DIR',
  about: `where \`pier agent\` keeps its state file, for ${what} (default ${DEFAULT_RUN_DIR})`,
});

export const COMMANDS: Record<string, Command> = {
  up: {
    usage: 'pier up NAME [-c FILE] [-p HOSTPORT:PORT[/PROTO]]... [--ip ADDR] [--ifname IF] [--data-dir DIR] [--state-dir DIR] [--explain]',
    about: 'create netns NAME if missing and wire it with a real CNI ADD (container ID pier-up-NAME)',
    options: [
      conf(''),
      { names: ['-p', '--port'], value: 'HOSTPORT:PORT[/PROTO]', about: 'publish the pod\'s PORT on the host\'s HOSTPORT; PROTO tcp (default), udp or sctp; repeatable (default: none)' },
      { names: ['--ip'], value: 'ADDR', about: 'ask for this pod address, as runtimeConfig ips (default: the next free one)' },
      { names: ['--ifname'], value: 'IF', about: 'the interface name in the netns (default eth0)' },
      dataDir,
      stateDir,
      { names: ['--explain'], about: 'a dry run: print the ip, sysctl and nft commands this up would amount to, and change nothing' },
    ],
    exit: `0 when wired (or explained), ${FAILED}`,
  },
  down: {
    usage: 'pier down NAME [--state-dir DIR]',
    about: 'CNI DEL for NAME, and remove the netns if `up` created it',
    options: [stateDir],
    exit: `0 when removed, ${FAILED}, also when NAME is not up`,
  },
  check: {
    usage: 'pier check NAME [--state-dir DIR]',
    about: 'CNI CHECK: is everything `up` made still there?',
    options: [stateDir],
    exit: `0 when all is there, ${FAILED}`,
  },
  ls: {
    usage: 'pier ls [--json] [--data-dir DIR] [--state-dir DIR]',
    about: 'list attachments: netns or container, ifname, network, addresses, host veth, ports, age',
    options: [
      { names: ['--json'], about: 'print JSON (one object per attachment) instead of a table' },
      { names: ['--data-dir'], value: 'DIR', about: `the store to list, every network in it (default ${DEFAULT_DATA_DIR})` },
      { ...stateDir, about: `where \`pier up\` keeps its state, to show its netns names (default ${DEFAULT_STATE_DIR})` },
    ],
    exit: `0, ${FAILED}`,
  },
  explain: {
    usage: 'pier explain NAME [--state-dir DIR]',
    about: 'the ip, sysctl and nft commands equivalent to what Pier did for NAME',
    options: [stateDir],
    exit: `0, ${FAILED}`,
  },
  doctor: {
    usage: 'pier doctor [-c FILE] [--conf-dir DIR] [--data-dir DIR] [--run-dir DIR]',
    about: 'check the host: nft, forwarding, drop policies, subnet clashes, leftovers, what container runtimes pass to plugins, and the cluster agent if one runs (is it alive, routes present, refused nodes, API reachable)',
    options: [
      { ...conf(''), about: 'check this network only (default: every Pier network in --conf-dir, and the built-in pier-default)' },
      { names: ['--conf-dir'], value: 'DIR', about: `where runtimes' network configs are (default ${DEFAULT_CONF_DIR})` },
      { ...dataDir, about: `the records of the -c (or built-in) network: as for up (default: the config's, else ${DEFAULT_DATA_DIR})` },
      runDir('its findings'),
    ],
    exit: '0 when no check failed (warnings allowed), 1 when one did',
  },
  status: {
    usage: 'pier status [-c FILE] [--data-dir DIR] [--run-dir DIR]',
    about: 'CNI STATUS for the network (sent as cniVersion 1.1.0): ready for ADD? On a node where `pier agent` runs, first the agent\'s view (node CIDRs, peers, each route present or missing, API reachability), and its conflist is the network checked',
    options: [conf(''), dataDir, runDir('its view')],
    exit: '0 when ready, 1 when not (why on stderr), or when the agent is not running, is stuck or misses a route',
  },
  gc: {
    usage: 'pier gc [-c FILE] [--data-dir DIR]',
    about: 'CNI GC (sent as cniVersion 1.1.0) keeping the attachments whose netns still exists: releases the others\' addresses, veths and NAT entries',
    options: [conf(''), dataDir],
    exit: '0 when done, 1 when a step failed (the others still ran; the errors, and a hint, on stderr)',
  },
  resync: {
    usage: 'pier resync [--data-dir DIR] [--table T] [--prune]',
    about: 'rebuild Pier\'s nftables tables from the store, after `nft flush ruleset` or an nftables restart',
    options: [
      { names: ['--data-dir'], value: 'DIR', about: `the store whose records say what to rebuild (default ${DEFAULT_DATA_DIR})` },
      { names: ['--table'], value: 'T', about: 'rebuild only this table (default: every table the records name)' },
      { names: ['--prune'], about: 'also remove elements no attachment in the store owns (default: only add)' },
    ],
    exit: '0 when everything was rebuilt, 1 when a record was skipped (listed on stdout) or it failed',
  },
  'install-cni': {
    usage: 'pier install-cni [--dest DIR] [--source FILE]',
    about: 'copy this executable into a CNI bin dir as pier and pier-ipam, each written to a temp name, fsynced and renamed into place: a runtime never runs a half-written file, and a pier already running keeps its old file (the DaemonSet\'s init container runs this)',
    options: [
      { names: ['--dest'], value: 'DIR', about: `the CNI bin dir to install into, made if missing (default ${DEFAULT_CNI_BIN_DIR})` },
      { names: ['--source'], value: 'FILE', about: 'the executable to install (default: this one; required when pier runs from source, not as the single executable)' },
    ],
    exit: `0 when both names are in place, ${FAILED}; the names keep what they held`,
  },
};

/** `text` broken into lines of at most `width` characters, at spaces. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** `--help` of one command: usage, what it does, every option with its default, exit status. */
export function commandHelp(c: Command): string {
  const opts = c.options.map((o) => [`${o.names.join(', ')}${o.value ? ` ${o.value}` : ''}`, o.about]);
  const width = Math.max(...opts.map(([n]) => n.length), 0);
  const option = ([n, a]: string[]) =>
    wrap(a, Math.max(40, 96 - width)).map((l, i) => `  ${(i ? '' : n).padEnd(width)}  ${l}`).join('\n');
  return [
    `Usage: ${c.usage}`,
    ...wrap(c.about, 94).map((l) => `  ${l}`),
    ...(opts.length ? ['', 'Options:', ...opts.map(option)] : []),
    '',
    ...wrap(`Exit status: ${c.exit}.`, 96),
    '',
  ].join('\n');
}

export const HELP = `pier ${PIER_VERSION}: a CNI plugin with its own IPAM (bridge, veth, addresses, routes, nftables NAT)

Commands:
${Object.values(COMMANDS).map((c) => `  ${c.usage}\n      ${c.about}`).join('\n')}
  pier agent [FLAGS]
      run on every node of a Kubernetes cluster: conflist, routes to the other nodes' pods (pier agent --help)
  pier --version | --help | COMMAND --help

Without -c, up/status/gc use the built-in network "pier-default": bridge pier0, pods in
10.123.0.0/24 and fd00:123::/64, masquerade on. State lives in ${DEFAULT_DATA_DIR} (override
with --data-dir) and ${DEFAULT_STATE_DIR} (--state-dir). Exit status: see COMMAND --help;
2 for an unknown command or none.

As a CNI plugin, a runtime runs pier with no arguments, CNI_COMMAND (ADD, DEL, CHECK, VERSION,
STATUS, GC) and the network config on stdin (a subcommand always means the CLI, whatever CNI_*
variables the shell exports); the reply is JSON on stdout (exit 0, or 1 with a CNI error), logs
go to ${DEFAULT_LOG_FILE} (PIER_LOG_FILE, PIER_LOG_LEVEL, or "logFile"/"logLevel" in the config);
PIER_TRACE=1 adds phase timings on stderr. Invoked as pier-ipam, the same program is an
IPAM-only plugin ("ipam": {"type": "pier-ipam", ...}).
`;

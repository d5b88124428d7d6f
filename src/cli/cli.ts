// The human CLI (no CNI_COMMAND in the environment): help, version, and `ls`.
import { PIER_VERSION } from '../version.ts';
import { DEFAULT_DATA_DIR } from '../ipam/config.ts';
import { listAttachments } from '../ipam/ipam.ts';

export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export const HELP = `pier ${PIER_VERSION}: a CNI plugin with its own IPAM (bridge, veth, addresses, routes, nftables NAT)

Usage:
  pier --version                 print the version
  pier --help                    this text
  pier ls [--json] [--data-dir DIR]
                                 list the attachments in the store (default ${DEFAULT_DATA_DIR})

As a CNI plugin, a runtime runs pier with CNI_COMMAND (ADD, DEL, CHECK, VERSION, STATUS, GC)
and the network config on stdin; the reply is JSON on stdout, logs go to /var/log/pier.log
(PIER_LOG_FILE, PIER_LOG_LEVEL, or "logFile"/"logLevel" in the config).
Invoked as pier-ipam, the same program is an IPAM-only plugin ("ipam": {"type": "pier-ipam"}).
`;

function usageError(io: CliIo, msg: string, hint: string): number {
  io.stderr.write(`pier: ${msg}\n  hint: ${hint}\n`);
  return 2;
}

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
  if (cmd === 'ls') return cmdLs(io, rest);
  return usageError(io, `unknown command ${JSON.stringify(cmd)}`, 'run `pier --help` for the commands');
}

function cmdLs(io: CliIo, args: string[]): number {
  let json = false;
  let dataDir = DEFAULT_DATA_DIR;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--json') json = true;
    else if (a === '--data-dir' && args[i + 1]) dataDir = args[++i];
    else if (a.startsWith('--data-dir=')) dataDir = a.slice('--data-dir='.length);
    else if (a === '--help' || a === '-h') {
      io.stdout.write('Usage: pier ls [--json] [--data-dir DIR]\n  Lists the attachments in the store.\n');
      return 0;
    } else return usageError(io, `unknown option ${JSON.stringify(a)} for ls`, 'pier ls [--json] [--data-dir DIR]');
  }
  const rows = listAttachments(dataDir).map((r) => ({
    containerID: r.containerID,
    ifname: r.ifname,
    network: r.network,
    ips: r.ips.length ? r.ips.map((i) => i.address) : ((r.extra.ips as string[] | undefined) ?? []),
    hostVeth: r.hostVeth ?? null,
    netns: r.netnsPath ?? null,
    portMappings: r.portMappings,
    created: r.createdAt,
  }));
  if (json) {
    io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  const table = [['NETWORK', 'CONTAINER', 'IFNAME', 'ADDRESSES', 'HOST VETH', 'NETNS', 'CREATED']];
  for (const r of rows) table.push([r.network, r.containerID.slice(0, 12), r.ifname, r.ips.join(','), r.hostVeth ?? '-', r.netns ?? '-', r.created]);
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  for (const row of table) io.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()}\n`);
  return 0;
}

// `pier doctor`: checks the host and says, in plain words with a fix for each, what is
// missing or risky for Pier's networks.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as nl from '../netlink/index.ts';
import { listAttachments } from '../ipam/ipam.ts';
import { nftAvailable } from '../nft/runner.ts';
import { checkForwardPolicy } from '../nft/forward-check.ts';
import { readHostRoutes, routeClashes } from './route-clash.ts';

export interface Finding {
  level: 'ok' | 'warn' | 'fail';
  what: string;
  fix?: string;
}

export interface DoctorInput {
  /** Pier networks to check: name, bridge, subnets, dataDir. */
  networks: Array<{ name: string; bridge: string; subnets: string[]; dataDir: string; needsNat: boolean }>;
}

export async function doctor(input: DoctorInput): Promise<Finding[]> {
  const out: Finding[] = [];
  const nft = await nftAvailable();
  if (nft.ok) out.push({ level: 'ok', what: `nft ${nft.version} with JSON support` });
  else out.push({ level: input.networks.some((n) => n.needsNat) ? 'fail' : 'warn', what: nft.reason, fix: nft.fix });

  let forward = '0';
  try {
    forward = nl.readSysctl('net.ipv4.ip_forward');
  } catch {
    /* no IPv4 */
  }
  if (forward === '1') out.push({ level: 'ok', what: 'IPv4 forwarding is on' });
  else out.push({ level: 'warn', what: 'IPv4 forwarding is off: pods cannot reach beyond this host', fix: 'sysctl -w net.ipv4.ip_forward=1 (Pier turns it on at ADD when isGateway is set)' });

  if (nft.ok) {
    try {
      const drops = await checkForwardPolicy();
      if (!drops.length) out.push({ level: 'ok', what: 'no other table drops forwarded traffic' });
      for (const d of drops) {
        out.push({
          level: 'warn',
          what: `table ${d.family} ${d.table} chain ${d.chain} has a forward hook with policy drop: pod traffic leaving the host is dropped there whatever Pier accepts`,
          fix: `allow it in that table, e.g. nft add rule ${d.family} ${d.table} ${d.chain} iifname "<bridge>" accept; nft add rule ${d.family} ${d.table} ${d.chain} oifname "<bridge>" ct state established,related accept`,
        });
      }
    } catch (err) {
      out.push({ level: 'warn', what: `could not read the forward chains: ${(err as Error).message}` });
    }
  }

  out.push(...runtimeEnvFindings(readRuntimeProcesses()));

  const sock = nl.NetlinkSocket.open();
  try {
    const links = nl.listLinks(sock);
    for (const net of input.networks) {
      const bridge = links.find((l) => l.name === net.bridge);
      const clashes = await routeClashes(net.subnets, readHostRoutes(sock, net.bridge));
      for (const subnet of net.subnets) {
        const clash = clashes.get(subnet);
        if (clash) {
          out.push({ level: 'fail', what: `network ${net.name}: pod subnet ${subnet} overlaps host route ${clash.join(', ')}`, fix: 'pick a pod subnet that nothing on the host routes (ip route; ip -6 route)' });
        } else out.push({ level: 'ok', what: `network ${net.name}: pod subnet ${subnet} clashes with no host route` });
      }
      const records = listAttachments(net.dataDir).filter((r) => r.network === net.name);
      if (bridge) {
        const known = new Set(records.map((r) => r.hostVeth));
        const leftovers = links.filter((l) => l.master === bridge.index && l.kind === 'veth' && !known.has(l.name));
        if (leftovers.length) {
          out.push({ level: 'warn', what: `bridge ${net.bridge}: ${leftovers.length} veth port(s) with no attachment: ${leftovers.map((l) => l.name).join(', ')}`, fix: `ip link del <veth> for each, once you know no pod uses it (pier gc cleans up attachments Pier knows of)` });
        }
      }
      const stale = records.filter((r) => r.netnsPath && !existsSync(r.netnsPath));
      if (stale.length) {
        out.push({ level: 'warn', what: `network ${net.name}: ${stale.length} reservation(s) whose netns is gone: ${stale.map((r) => `${r.containerID}/${r.ifname}`).slice(0, 5).join(', ')}`, fix: 'pier gc (releases attachments whose netns no longer exists)' });
      } else out.push({ level: 'ok', what: `network ${net.name}: ${records.length} attachment(s), none stale` });
    }
  } finally {
    sock.close();
  }
  return out;
}

/** Container runtimes that run CNI plugins, which inherit the runtime's environment. */
const RUNTIMES = new Set(['containerd', 'crio', 'kubelet', 'podman']);

export interface RuntimeProcess {
  pid: number;
  name: string;
  /** Its environment, or undefined when it could not be read (not root). */
  env?: Map<string, string>;
}

/** The running container runtimes and their environments, from /proc. */
export function readRuntimeProcesses(proc = '/proc'): RuntimeProcess[] {
  const out: RuntimeProcess[] = [];
  for (const entry of readdirSync(proc)) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let name: string;
    try {
      name = readFileSync(`${proc}/${entry}/comm`, 'utf8').trim();
    } catch {
      continue; // gone meanwhile
    }
    if (!RUNTIMES.has(name)) continue;
    let env: Map<string, string> | undefined;
    try {
      env = new Map(
        readFileSync(`${proc}/${entry}/environ`, 'utf8')
          .split('\0')
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]),
      );
    } catch {
      env = undefined;
    }
    out.push({ pid: Number(entry), name, env });
  }
  return out;
}

/**
 * What the runtimes' environments do to Pier: plugins inherit it (libcni appends the CNI
 * variables to it), and Node acts on two variables at every start, before Pier's code runs.
 */
export function runtimeEnvFindings(procs: RuntimeProcess[]): Finding[] {
  const out: Finding[] = [];
  for (const p of procs) {
    const who = `${p.name} (pid ${p.pid})`;
    if (!p.env) {
      out.push({ level: 'warn', what: `could not read the environment of ${who}`, fix: 'run pier doctor as root' });
      continue;
    }
    const options = p.env.get('NODE_OPTIONS');
    const certs = p.env.get('NODE_EXTRA_CA_CERTS');
    if (options) {
      out.push({
        level: 'warn',
        what: `${who} passes NODE_OPTIONS=${JSON.stringify(options)} to the plugins it runs: Node applies it to Pier too, a V8 flag there (e.g. --max-old-space-size) stops Pier from starting, and --require loads code into it`,
        fix: `remove NODE_OPTIONS from ${p.name}'s environment (systemctl edit ${p.name}) and set it only for the programs that need it`,
      });
    }
    if (certs) {
      out.push({
        level: 'warn',
        what: `${who} passes NODE_EXTRA_CA_CERTS to the plugins it runs: Node reads that bundle at every start, ~30 ms per Pier call, and Pier needs no certificates`,
        fix: `remove NODE_EXTRA_CA_CERTS from ${p.name}'s environment (systemctl edit ${p.name})`,
      });
    }
    if (!options && !certs) out.push({ level: 'ok', what: `${who} passes no NODE_OPTIONS or NODE_EXTRA_CA_CERTS to plugins` });
  }
  return out;
}

export function formatFindings(findings: Finding[]): string {
  return findings.map((f) => `${f.level.padEnd(4)}  ${f.what}${f.fix ? `\n      fix: ${f.fix}` : ''}`).join('\n') + '\n';
}

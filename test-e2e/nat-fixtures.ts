// Real traffic for the NAT e2e tests: an "outside" host netns wired to a TestWorld's host,
// tiny echo servers (they answer with the caller's address) and bounded one-shot clients.
// Everything runs under `ip netns exec` in namespaces the test made; servers are killed by PID.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import type { TestWorld } from './cni-harness.ts';
import { listTable } from './nft-state.ts';

/** The "outside" network (TEST-NET-2): the host side and the outside host. */
export const HOST_OUT = '198.51.100.1';
export const OUTSIDE = '198.51.100.2';
/** A second local address of the host (TEST-NET-3), on the same link. */
export const HOST_OTHER = '203.0.113.1';

/** Answers TCP with `remoteAddress\n` and UDP datagrams with the sender's address. Exits by
 * itself after `lifeMs`, so a test that dies before its after() still leaves nothing running. */
const SERVER = `
const net = require('net'), dgram = require('dgram');
const [tcpPort, udpPort, lifeMs] = process.argv.slice(1).map(Number);
setTimeout(() => process.exit(0), lifeMs);
let up = 0;
const ready = () => { if (++up === 2) process.stdout.write('ready\\n'); };
net.createServer((c) => { c.on('error', () => {}); c.end(c.remoteAddress + '\\n'); }).listen(tcpPort, '0.0.0.0', ready);
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => u.send(r.address + '\\n', r.port, r.address));
u.bind(udpPort, '0.0.0.0', ready);
`;

/** One request; prints the answer, `ERR <code>` or `TIMEOUT`. Never hangs past its timeout. */
const CLIENT = `
const net = require('net'), dgram = require('dgram');
const [proto, host, port, ms] = process.argv.slice(1);
const done = (s) => { process.stdout.write(s); process.exit(0); };
setTimeout(() => done('TIMEOUT'), Number(ms));
if (proto === 'tcp') {
  const c = net.connect({ host, port: Number(port) });
  let d = '';
  c.on('data', (x) => { d += x; });
  c.on('end', () => done(d.trim()));
  c.on('error', (e) => done('ERR ' + e.code));
} else {
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => done(m.toString().trim()));
  s.on('error', (e) => done('ERR ' + e.code));
  s.connect(Number(port), host, () => s.send('hi'));
}
`;

/** Starts the echo server in `ns`; resolves when it listens. Registered for kill in the world. */
export async function startServer(world: TestWorld, ns: string, tcpPort: number, udpPort: number, lifeMs = 300_000): Promise<ChildProcess> {
  // `ip netns exec` execs the command, so the child's PID is the server's own.
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, String(tcpPort), String(udpPort), String(lifeMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  world.cleanup.add(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { err += d; });
  // A backstop against a server that never comes up, not a measure: a loaded machine is slow.
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    while (!out.includes('ready')) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server in ${ns} exited: ${err}`);
      await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
    }
  } finally {
    clearTimeout(timer);
  }
  return child;
}

/** One TCP or UDP request from `ns` to host:port: the server's answer (the address it saw),
 * `ERR <code>` or `TIMEOUT`. A test takes TIMEOUT as a result only with other evidence of why
 * (see nat-status): the default is long so a loaded machine does not produce one by itself. */
export function talk(ns: string, proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = 10_000): string {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, proto, host, String(port), String(timeoutMs)], {
    encoding: 'utf8',
    timeout: timeoutMs + 10_000,
  });
  if (r.status !== 0) throw new Error(`client in ${ns} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs `ip ARGS`, failing the test with stderr when it fails. */
export function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
}

/**
 * An outside host: a netns joined to the world's host netns by a veth pair (host side
 * 198.51.100.1/24 plus 203.0.113.1/24, outside 198.51.100.2/24 with a route to 203.0.113.0/24
 * on the link), with NO route to the pod subnets: it can only answer pods through masquerade.
 * With `routeBack` it routes those subnets via the host instead: then a pod whose traffic is
 * not masqueraded still gets its answer, and the answer names the pod's own address, so "no
 * masquerade" shows as a wrong address rather than as a timeout.
 */
export function addOutside(world: TestWorld, opts: { routeBack?: string[] } = {}): string {
  const ns = `${world.prefix}-out`;
  world.cleanup.addNetns(ns);
  ip('netns', 'add', ns);
  const hostSide = `${world.prefix}ho`;
  const outSide = `${world.prefix}oo`;
  ip('-n', world.host, 'link', 'add', hostSide, 'type', 'veth', 'peer', 'name', outSide, 'netns', ns);
  ip('-n', world.host, 'addr', 'add', `${HOST_OUT}/24`, 'dev', hostSide);
  ip('-n', world.host, 'addr', 'add', `${HOST_OTHER}/24`, 'dev', hostSide);
  ip('-n', world.host, 'link', 'set', hostSide, 'up');
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'addr', 'add', `${OUTSIDE}/24`, 'dev', outSide);
  ip('-n', ns, 'link', 'set', outSide, 'up');
  ip('-n', ns, 'route', 'add', '203.0.113.0/24', 'dev', outSide);
  for (const subnet of opts.routeBack ?? []) ip('-n', ns, 'route', 'add', subnet, 'via', HOST_OUT);
  return ns;
}

/**
 * `nft -j list table inet TABLE` in the world's host netns, as JSON text: '' only when the
 * table does not exist; when nft fails otherwise it throws (see nft-state.ts).
 */
export function tableText(world: TestWorld, table: string): string {
  const items = listTable(world.host, table);
  return items === null ? '' : JSON.stringify({ nftables: items });
}

/** The number of rules in the table (from `nft -j list table`). */
export function ruleCount(world: TestWorld, table: string): number {
  const text = tableText(world, table);
  if (!text) return 0;
  return (JSON.parse(text).nftables as Record<string, unknown>[]).filter((i) => 'rule' in i).length;
}

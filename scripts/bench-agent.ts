#!/usr/bin/env node
// The cluster agent's benchmark (run by `npm run bench`, or alone as root:
// `node --import tsx scripts/bench-agent.ts [--changes N] [--nodes N] [--idle SECONDS] [--out DIR]`).
// A real control plane (test-e2e/kube) and three simulated nodes running dist/pier agent in
// throwaway netns (test-e2e/agent-cluster-world.ts); "fake" nodes are Node objects only.
// Measures, and reports as medians and percentiles, never as pass/fail:
//   - latency from a Node change in the API to the changed route on a peer (its kernel's
//     route event timestamp), p50/p99 over --changes changes, with 3 nodes and with --nodes more;
//   - --nodes Node objects: the time until a peer has every route, and how many netlink batches
//     it took, both while they are created and from a cold start of the agent;
//   - the agent's RSS and CPU while idle over --idle seconds.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startControlPlane } from '../test-e2e/kube/control-plane.ts';
import { ClusterWorld, CP_ADDR, waitFor, type SimNode } from '../test-e2e/agent-cluster-world.ts';
import { ensureBuilt, PIER, ROOT } from '../test-e2e/cni-harness.ts';
import { run } from '../test-e2e/helpers.ts';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const CHANGES = opt('--changes', 60);
const FAKES = opt('--nodes', 500);
const IDLE = opt('--idle', 60);
const outDir = args.includes('--out') ? args[args.indexOf('--out') + 1] : join(ROOT, 'bench/results');
const t0 = Date.now();
const log = (m: string) => process.stderr.write(`[bench-agent ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] : NaN;
};
const summary = (xs: number[]) => ({ n: xs.length, p50: q(xs, 0.5), p90: q(xs, 0.9), p99: q(xs, 0.99), max: q(xs, 1) });

/** Timestamps of route changes in `netns`, from `ip -ts monitor route` (wall clock, ms). */
function monitorRoutes(world: ClusterWorld, netns: string) {
  const child = spawn('ip', ['netns', 'exec', netns, 'ip', '-ts', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  world.cleanup.add(() => child.exitCode === null && child.pid && process.kill(child.pid, 'SIGKILL'));
  const events: Array<{ at: number; line: string }> = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\] (.*)$/.exec(l);
      // The stamp is local time with microseconds; Date takes milliseconds.
      if (m) events.push({ at: new Date(m[1].slice(0, 23)).getTime() + Number(`0.${m[1].slice(23)}`), line: m[2] });
    }
  });
  return events;
}

async function metricsOf(world: ClusterWorld, n: SimNode): Promise<Record<string, number>> {
  const r = world.exec(n.netns, process.execPath, ['-e', 'fetch("http://127.0.0.1:9478/metrics").then(async (r) => process.stdout.write(await r.text()))']);
  const out: Record<string, number> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^(\S+) (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

function procStats(pid: number): { cpuTicks: number; rssKb: number; hwmKb: number; anonKb: number; fileKb: number } {
  const stat = run('cat', [`/proc/${pid}/stat`]).split(') ')[1].split(' ');
  const status = run('cat', [`/proc/${pid}/status`]);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
  return { cpuTicks: Number(stat[11]) + Number(stat[12]), rssKb: kb('VmRSS'), hwmKb: kb('VmHWM'), anonKb: kb('RssAnon'), fileKb: kb('RssFile') };
}

/**
 * Where the agent's resident pages are, from /proc/PID/smaps: PSS (each shared page divided by
 * the processes mapping it) and the resident pages of each mapping group, in MB: the
 * executable's own file pages (dist/pier: Node's code and data and the SEA blob), other files
 * (libc, libstdc++, koffi.node), malloc's [heap] and the other anonymous mappings (V8's heap,
 * large mallocs, thread stacks).
 */
function memoryMap(pid: number, exe: string): Record<string, number> {
  const rollup = run('cat', [`/proc/${pid}/smaps_rollup`]);
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(rollup)?.[1] ?? NaN);
  const groups: Record<string, number> = { exeFileMb: 0, otherFileMb: 0, mallocHeapMb: 0, otherAnonMb: 0 };
  let group = 'otherAnonMb';
  for (const line of run('cat', [`/proc/${pid}/smaps`]).split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) group = head[1] === exe ? 'exeFileMb' : head[1] === '[heap]' ? 'mallocHeapMb' : head[1].startsWith('/') ? 'otherFileMb' : 'otherAnonMb';
    const rss = /^Rss:\s+(\d+)/.exec(line);
    if (rss) groups[group] += Number(rss[1]) / 1024;
  }
  return { pssMb: kb('Pss') / 1024, pssAnonMb: kb('Pss_Anon') / 1024, pssFileMb: kb('Pss_File') / 1024, ...groups };
}

const eventsSeen = (m: Record<string, number>) => Object.entries(m).filter(([k]) => k.startsWith('pier_agent_watch_events_total')).reduce((a, [, v]) => a + v, 0);

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates network namespaces');
  ensureBuilt();
  const world = new ClusterWorld(`pa${randomBytes(2).toString('hex')}`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => {
    world.cleanup.runAll();
    process.exit(130);
  });
  const results: Record<string, unknown> = { fakes: FAKES, changes: CHANGES, idleSeconds: IDLE };
  try {
    log('control plane');
    const cp = await startControlPlane({ name: `${world.prefix}-bench`, netns: world.cp, bindAddress: CP_ADDR, clusterCidr: '10.244.0.0/16', nodeCidrMaskSize: { v4: 26 } });
    world.cleanup.add(() => void cp.stop());
    cp.kubectl(['apply', '-f', join(ROOT, 'conf/pier-agent-rbac.yaml')]);
    const sa = await cp.serviceAccountKubeconfig('kube-system', 'pier-agent');
    const kc = new KubeConfig();
    kc.loadFromFile(cp.hostKubeconfig);
    const api = kc.makeApiClient(CoreV1Api);
    const setIps = (name: string, ip: string) =>
      api.patchNodeStatus({ name, body: { status: { addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }] } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const create = async (name: string, ip: string, mac?: string) => {
      await api.createNode({ body: { apiVersion: 'v1', kind: 'Node', metadata: { name, ...(mac && { annotations: { 'pier.dev/vtep-mac': mac } }) } } });
      await setIps(name, ip);
    };
    const nodes = [world.addNode('n1', 1, '203.0.113.11', 'fd00:203:1::11'), world.addNode('n2', 1, '203.0.113.12', 'fd00:203:1::12'), world.addNode('n3', 2, '203.0.113.141', 'fd00:203:2::141')];
    for (const n of nodes) await create(n.name, n.ip4);
    for (const n of nodes) world.startAgent(n, sa, ['--cluster-cidr', '10.244.0.0/16', '--resync-interval', '60']);
    const [n1] = nodes;
    await waitFor('3 nodes converged', () => nodes.every((n) => world.routesOf(n).length === 2), 120_000, 100);
    const events = monitorRoutes(world, n1.netns);
    // The node whose InternalIP the latency runs change: a Node object only, on segment 1.
    await create('lat', '203.0.113.50');
    await waitFor('the latency node routed', () => world.routesOf(n1).some((r) => r.includes('via 203.0.113.50')), 60_000, 50);

    const latency = async (label: string) => {
      const ms: number[] = [];
      for (let i = 0; i < CHANGES; i++) {
        const ip = `203.0.113.${i % 2 ? 50 : 51}`;
        const from = events.length;
        const start = Date.now();
        await setIps('lat', ip);
        const ev = await waitFor('the route event', () => events.slice(from).find((e) => e.line.includes(`via ${ip} `) && !e.line.startsWith('Deleted')), 30_000, 5);
        ms.push(ev.at - start);
      }
      results[label] = summary(ms);
      log(`${label}: ${JSON.stringify(results[label])}`);
    };
    await latency('latency3');

    log(`${FAKES} Node objects while the agents run`);
    const fakes = Array.from({ length: FAKES }, (_, i) => ({
      name: `f${i}`,
      // 80 share segment 1 with n1 (host-gw); the rest are elsewhere (VXLAN, with a VTEP MAC).
      ip: i < 80 ? `203.0.113.${20 + i}` : `198.51.100.${10 + (i % 240)}`,
      mac: `0e:fa:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
    }));
    const before = await metricsOf(world, n1);
    const liveStart = Date.now();
    for (let i = 0; i < fakes.length; i += 25) await Promise.all(fakes.slice(i, i + 25).map((f) => create(f.name, f.ip, f.mac)));
    const created = Date.now();
    const want = 3 + FAKES;
    // kube-controller-manager allocates podCIDRs at its own pace: the agent cannot route a node
    // before that, so say when the last one was allocated.
    let allocatedAt = 0;
    let askedAt = 0;
    await waitFor('every route on n1', () => {
      if (!allocatedAt && Date.now() - askedAt > 1000 && (askedAt = Date.now()) && (cp.kubectl(['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.spec.podCIDR}{"\\n"}{end}']).split('\n').filter(Boolean).length === want + 1)) allocatedAt = Date.now();
      return world.routesOf(n1).length === want;
    }, 300_000, 100);
    if (!allocatedAt) allocatedAt = Date.now();
    const after = await metricsOf(world, n1);
    const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
    results.live = { createMs: created - liveStart, convergeMs: Date.now() - liveStart, afterLastCreateMs: Date.now() - created, lastPodCidrMs: allocatedAt - liveStart, batches: delta('pier_agent_netlink_batches_total'), requests: delta('pier_agent_netlink_requests_total'), passes: delta('pier_agent_reconciles_total{result="ok"}') };
    log(`live: ${JSON.stringify(results.live)}`);

    await latency(`latency${FAKES + 3}`);

    log('cold start with every Node in place: n1\'s routes and overlay flushed, agent restarted');
    await world.stopAgent(n1);
    run('ip', ['-n', n1.netns, 'route', 'flush', 'proto', '173']);
    run('ip', ['-n', n1.netns, '-6', 'route', 'flush', 'proto', '173']);
    run('ip', ['-n', n1.netns, 'link', 'del', 'pier.vxlan']);
    const coldStart = Date.now();
    world.startAgent(n1, sa, ['--cluster-cidr', '10.244.0.0/16', '--resync-interval', '60']);
    await waitFor('every route on n1 again', () => world.routesOf(n1).length === want, 300_000, 50);
    const cold = await metricsOf(world, n1);
    results.cold = { convergeMs: Date.now() - coldStart, batches: cold.pier_agent_netlink_batches_total, requests: cold.pier_agent_netlink_requests_total, passes: cold['pier_agent_reconciles_total{result="ok"}'] };
    log(`cold: ${JSON.stringify(results.cold)}`);

    // Idle means no Node changes: kube-controller-manager marks every node without a kubelet
    // Unknown and taints it about a minute after it appears, one write per node; wait for that
    // storm to pass (no watch event for 15 s) before the window starts.
    log('waiting for the API to fall quiet');
    const quietDeadline = Date.now() + 240_000;
    let seen = eventsSeen(await metricsOf(world, n1));
    for (let still = 0; still < 3 && Date.now() < quietDeadline; ) {
      await new Promise((r) => setTimeout(r, 5000));
      const now = eventsSeen(await metricsOf(world, n1));
      still = now === seen ? still + 1 : 0;
      seen = now;
    }
    log(`idle for ${IDLE} s`);
    const pid = n1.agent!.pid!;
    const a = procStats(pid);
    const ta = Date.now();
    await new Promise((r) => setTimeout(r, IDLE * 1000));
    const b = procStats(pid);
    const eventsDuring = eventsSeen(await metricsOf(world, n1)) - seen;
    const ticks = Number(run('getconf', ['CLK_TCK']).trim());
    results.idle = {
      seconds: (Date.now() - ta) / 1000, cpuPercent: (((b.cpuTicks - a.cpuTicks) / ticks) / ((Date.now() - ta) / 1000)) * 100,
      rssMb: b.rssKb / 1024, peakRssMb: b.hwmKb / 1024, anonMb: b.anonKb / 1024, fileMb: b.fileKb / 1024, watchEvents: eventsDuring, nodes: want,
      ...memoryMap(pid, PIER),
    };
    log(`idle: ${JSON.stringify(results.idle)}`);
  } finally {
    world.cleanup.runAll();
  }
  const doc = { when: new Date().toISOString(), commit: run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).trim(), results };
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `agent-${doc.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  const r = results as any;
  const row = (what: string, v: string, target = '') => console.log(`| ${what} | ${v} | ${target} |`);
  console.log('\n| agent figure | value | target |\n|---|---|---|');
  row('Node change -> route on a peer, 3 nodes, p50 / p99 (ms)', `${r.latency3.p50.toFixed(1)} / ${r.latency3.p99.toFixed(1)}`);
  row(`Node change -> route on a peer, ${FAKES + 3} nodes, p50 / p99 (ms)`, `${r[`latency${FAKES + 3}`].p50.toFixed(1)} / ${r[`latency${FAKES + 3}`].p99.toFixed(1)}`, 'p99 <= 1000');
  row(`${FAKES} nodes created live: converged after (ms), batches, requests, passes`, `${r.live.convergeMs} (last create at ${r.live.createMs}, last podCIDR by ${r.live.lastPodCidrMs}), ${r.live.batches}, ${r.live.requests}, ${r.live.passes}`);
  row(`cold start with ${FAKES + 3} nodes: converged (ms), batches, requests`, `${r.cold.convergeMs}, ${r.cold.batches}, ${r.cold.requests}`);
  row(`idle ${IDLE} s with ${FAKES + 3} nodes: CPU (%)`, `${r.idle.cpuPercent.toFixed(2)} (${r.idle.watchEvents} watch events meanwhile)`, 'CPU <= 1');
  row('RSS (MB): all, of which anonymous and file-backed; peak', `${r.idle.rssMb.toFixed(1)}: ${r.idle.anonMb.toFixed(1)} + ${r.idle.fileMb.toFixed(1)}; ${r.idle.peakRssMb.toFixed(1)}`, 'RSS <= 80');
  row('RSS by mapping (MB): dist/pier\'s file pages, other files, malloc [heap], other anonymous', [r.idle.exeFileMb, r.idle.otherFileMb, r.idle.mallocHeapMb, r.idle.otherAnonMb].map((v: number) => v.toFixed(1)).join(', '));
  row('PSS (MB): all, anonymous, file-backed', [r.idle.pssMb, r.idle.pssAnonMb, r.idle.pssFileMb].map((v: number) => v.toFixed(1)).join(', '));
  console.log(`\nwrote ${file}`);
}

main().catch((err) => {
  process.stderr.write(`bench-agent: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

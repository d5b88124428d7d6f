#!/usr/bin/env node
// `npm run bench`: Pier against the reference plugins (containernetworking-plugins in
// /usr/lib/cni), in one interleaved run on this machine. Prints a table of ratios and writes
// bench/results/<timestamp>.json (fields: bench/README.md).
//
// Isolation: each side gets its own throwaway netns playing the host (bridge, host veths, nft
// table, iptables rules all live there) and its own pod netns; a worker (scripts/bench-worker.mjs,
// a small libcni) runs inside each host netns and execs the plugins. Everything is named with a
// unique `pb<4 hex>` prefix and removed at the end, on failure and on SIGINT/SIGTERM/SIGHUP too.
// No traffic is sent at all. The real host's netns list, links, nft tables and iptables rules
// are compared before and after.
//
// Usage: node scripts/bench.mjs [--runs N=20] [--scale N=500] [--burst N=100] [--parallel N=8]
//                               [--burst-rounds N=1] [--budget SECONDS=285] [--cri-runs N=15]
//                               [--no-build] [--no-agent] [--out DIR]
// Then, unless --no-agent, the cluster agent's benchmark (scripts/bench-agent.ts).
// --scale is a goal: population stops early, at the same count on both sides, when going on
// would pass the time budget; the JSON and the table say how many attachments there were.
// Last, pod sandboxes through containerd's CRI (scripts/bench-cri.ts), outside the budget:
// --cri-runs 0 skips them.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, totalmem, release, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PIER = join(ROOT, 'dist/pier');
const REF_DIR = '/usr/lib/cni';
const WORKER = join(ROOT, 'scripts/bench-worker.mjs');
const PER_NETNS = 50; // attachments per shared pod netns (eth names differ) when populating

const opts = parseArgs(process.argv.slice(2));
const prefix = `pb${randomBytes(2).toString('hex')}`;
const t0 = Date.now();
const log = (msg) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);

// ---------------------------------------------------------------- arguments, preconditions

function parseArgs(argv) {
  const o = { runs: 20, scale: 500, burst: 100, parallel: 8, burstRounds: 1, budget: 285, criRuns: 15, build: true, agent: true, out: join(ROOT, 'bench/results') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} needs a whole number`);
      return n;
    };
    if (a === '--runs') o.runs = num();
    else if (a === '--scale') o.scale = num();
    else if (a === '--burst') o.burst = num();
    else if (a === '--parallel') o.parallel = num();
    else if (a === '--burst-rounds') o.burstRounds = num();
    else if (a === '--budget') o.budget = num();
    else if (a === '--cri-runs') o.criRuns = num();
    else if (a === '--no-build') o.build = false;
    else if (a === '--no-agent') o.agent = false;
    else if (a === '--out') o.out = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

function sh(cmd, args, { check = true } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
  return r;
}

function preflight() {
  if (process.getuid?.() !== 0) throw new Error('run as root: the bench creates network namespaces');
  for (const p of ['bridge', 'host-local', 'portmap', 'firewall']) {
    if (!existsSync(join(REF_DIR, p))) throw new Error(`${REF_DIR}/${p} missing: apt-get install containernetworking-plugins`);
  }
  for (const [bin, pkg] of [['iptables', 'iptables'], ['nft', 'nftables'], ['ip', 'iproute2']]) {
    if (sh('sh', ['-c', `command -v ${bin}`], { check: false }).status !== 0) throw new Error(`${bin} missing: apt-get install -y ${pkg}`);
  }
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time missing: apt-get install -y time');
  if (!existsSync(PIER) && opts.build) {
    log('dist/pier missing: building');
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs')], { stdio: ['ignore', 2, 2] });
    if (r.status !== 0) throw new Error('build failed');
  }
  if (!existsSync(PIER)) throw new Error('dist/pier missing: run npm run build');
}

// ---------------------------------------------------------------- the real host, before/after

/** What must be the same after the run: netns names, links, nft tables, iptables rules. */
function hostSnapshot() {
  const links = JSON.parse(sh('ip', ['-j', 'link', 'show']).stdout || '[]').map((l) => `${l.ifindex}:${l.ifname}`);
  return {
    netns: sh('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]).filter(Boolean).sort(),
    links: links.sort(),
    nftTables: sh('nft', ['list', 'tables']).stdout.split('\n').filter(Boolean).sort(),
    // Counters and the "# Generated on <date>" comments change by themselves.
    iptables: sh('iptables-save', [], { check: false }).stdout.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/, '')),
  };
}

function hostDiff(before, after) {
  const diff = {};
  for (const k of Object.keys(before)) {
    const b = new Set(before[k]);
    const a = new Set(after[k]);
    const added = [...a].filter((x) => !b.has(x));
    const removed = [...b].filter((x) => !a.has(x));
    if (added.length || removed.length) diff[k] = { added, removed };
  }
  return diff;
}

// ---------------------------------------------------------------- the world and its cleanup

const cleanupSteps = [];
let cleanedUp = false;

function cleanup() {
  if (cleanedUp) return;
  cleanedUp = true;
  for (const step of cleanupSteps.reverse()) {
    try {
      step();
    } catch {
      /* every step gets its chance */
    }
  }
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup();
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[sig]);
  });
}

function addNetns(name) {
  cleanupSteps.push(() => spawnSync('ip', ['netns', 'del', name]));
  sh('ip', ['netns', 'add', name]);
  sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/**
 * A worker (small libcni) living in `hostNs`; requests are answered in order.
 *
 * The host-wide lock files are made private to this throwaway host: Pier's /run/pier (its nft
 * lock) and iptables' /run/xtables.lock get bind mounts of files in `runDir`, inside the private
 * mount namespace `ip netns exec` makes (mounts there never reach the real host). Otherwise the
 * figures would include waiting for anybody else's Pier or iptables on this machine (other
 * people's e2e tests), which a real host, being one netns, would not share.
 */
function startWorker(hostNs, runDir) {
  mkdirSync(join(runDir, 'pier'), { recursive: true, mode: 0o700 });
  writeFileSync(join(runDir, 'xtables.lock'), '');
  const script = [
    'set -e',
    'mount --bind "$0/pier" /run/pier',
    'if [ -e /run/xtables.lock ]; then mount --bind "$0/xtables.lock" /run/xtables.lock; fi',
    'exec "$1" "$2"',
  ].join('\n');
  // detached: the worker leads its own process group, so cleanup can end it and any plugin it
  // is running, by that group's id, and nothing else.
  const child = spawn('ip', ['netns', 'exec', hostNs, 'sh', '-c', script, runDir, process.execPath, WORKER], {
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: true,
  });
  cleanupSteps.push(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  const waiting = new Map();
  let nextId = 1;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const reply = JSON.parse(line);
    const w = waiting.get(reply.id);
    waiting.delete(reply.id);
    if (reply.ok) w.resolve(reply.value);
    else w.reject(new Error(reply.error));
  });
  child.on('exit', (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`worker in ${hostNs} exited (${code ?? signal})`));
    waiting.clear();
  });
  return {
    pid: child.pid,
    call(req) {
      return new Promise((resolve, reject) => {
        const id = nextId++;
        waiting.set(id, { resolve, reject });
        child.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
      });
    },
    close() {
      child.stdin.end();
    },
  };
}

/** One side's world: host netns + worker, a bench pod netns, pools of shared pod netns. */
function makeSide(tag, dataDir) {
  const host = addNetns(`${prefix}-${tag}h`);
  const pod = addNetns(`${prefix}-${tag}p`);
  const pools = [];
  return {
    tag,
    host,
    podPath: `/run/netns/${pod}`,
    worker: startWorker(host, join(dataDir, `run-${tag}`)),
    /** The netns path for attachment `i` of a batch: PER_NETNS attachments share one netns. */
    poolPath(i) {
      const k = Math.floor(i / PER_NETNS);
      while (pools.length <= k) pools.push(addNetns(`${prefix}-${tag}n${pools.length}`));
      return `/run/netns/${pools[k]}`;
    },
  };
}

// ---------------------------------------------------------------- network configs

function pierNet(dataDir, binDir, kind) {
  const full = kind === 'full';
  const pier = {
    type: 'pier',
    bridge: `${prefix}p${full ? 'f' : 'b'}`,
    isGateway: true,
    nftTable: `pier_${prefix}_${kind}`,
    ...(full && { ipMasq: true, capabilities: { portMappings: true } }),
    ipam: { type: 'pier-ipam', ranges: [[{ subnet: full ? '10.232.0.0/16' : '10.231.0.0/16' }]], dataDir },
  };
  return {
    name: `${prefix}-pier-${kind}`,
    cniVersion: '1.0.0',
    cniPath: `${binDir}:${REF_DIR}`,
    // Pier's log goes to the bench's data dir, at its default level.
    env: { PIER_LOG_FILE: join(dataDir, 'pier.log') },
    plugins: [pier],
  };
}

function refNet(dataDir, kind) {
  const full = kind === 'full';
  const bridge = {
    type: 'bridge',
    bridge: `${prefix}r${full ? 'f' : 'b'}`,
    isGateway: true,
    ...(full && { ipMasq: true }),
    ipam: { type: 'host-local', ranges: [[{ subnet: full ? '10.234.0.0/16' : '10.233.0.0/16' }]], dataDir },
  };
  const plugins = full ? [bridge, { type: 'portmap', capabilities: { portMappings: true }, snat: true }, { type: 'firewall' }] : [bridge];
  return { name: `${prefix}-ref-${kind}`, cniVersion: '1.0.0', cniPath: REF_DIR, env: {}, plugins };
}

// ---------------------------------------------------------------- statistics

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const r = (x) => Math.round(x * 100) / 100;
  return { n: s.length, median: r(quantile(s, 0.5)), p10: r(quantile(s, 0.1)), p90: r(quantile(s, 0.9)), min: r(s[0]), max: r(s[s.length - 1]) };
}

// ---------------------------------------------------------------- scenarios

let cidSeq = 0;
const cid = (tag) => `${prefix}-${tag}-${cidSeq++}`;

/** `runs` interleaved ADD+DEL cycles on each side (order alternates every iteration). */
async function cycles(sides, runs, withPort) {
  const out = Object.fromEntries(sides.map(({ side }) => [side.tag, { add: [], del: [], del2: [], addCalls: [], delCalls: [], retries: 0 }]));
  for (let i = 0; i < runs; i++) {
    const order = i % 2 ? [...sides].reverse() : sides;
    for (const { side, net } of order) {
      const att = {
        containerId: cid(side.tag),
        netns: side.podPath,
        ifname: 'eth0',
        ...(withPort && { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] }),
      };
      const a = await side.worker.call({ op: 'add', net, att });
      const d = await side.worker.call({ op: 'del', net, att });
      // containerd's second DEL (no netns, no prevResult), once everything is gone.
      const d2 = withPort ? await side.worker.call({ op: 'del2', net, att }) : undefined;
      const o = out[side.tag];
      o.add.push(a.ms);
      o.del.push(d.ms);
      if (d2) o.del2.push(d2.ms);
      o.addCalls.push(a.calls);
      o.delCalls.push(d.calls);
      o.retries += [...a.calls, ...d.calls].reduce((n, c) => n + c.retries, 0);
    }
  }
  const res = {};
  for (const [tag, o] of Object.entries(out)) {
    res[tag] = { add: summary(o.add), del: summary(o.del), ...(o.del2.length && { del2: summary(o.del2) }), addPerPlugin: perPlugin(o.addCalls), delPerPlugin: perPlugin(o.delCalls), retries: o.retries };
  }
  return res;
}

/** Median time of each plugin of a chain. */
function perPlugin(callLists) {
  const by = {};
  for (const calls of callLists) for (const c of calls) (by[c.type] ??= []).push(c.ms);
  return Object.fromEntries(Object.entries(by).map(([t, xs]) => [t, summary(xs).median]));
}

/** `n` attachments with a hostPort each; the `first`-th onwards of a series spread over pool netns. */
function batchAtts(side, n, tag, portBase, ifPrefix, first = 0) {
  return Array.from({ length: n }, (_, j) => {
    const i = first + j;
    return {
      containerId: cid(`${side.tag}${tag}`),
      netns: side.poolPath(i),
      ifname: `${ifPrefix}${i % PER_NETNS}`,
      portMappings: [{ hostPort: portBase + j, containerPort: 80, protocol: 'tcp' }],
    };
  });
}

/**
 * Creates up to `opts.scale` attachments with a hostPort on each side, 50 at a time alternating
 * sides, and stops early (both sides at the same count) when going on would push the run past
 * `opts.budget` seconds, keeping time for the scale cycles and the cleanup. Returns the count.
 */
async function populate(P, R, nets, full) {
  const chunk = PER_NETNS;
  const done = { p: 0, r: 0 };
  const stats = { p: { ms: [], totalMs: 0, retries: 0 }, r: { ms: [], totalMs: 0, retries: 0 } };
  // The cycles at N cost about this much; the reference's grow with N (2.5x at 350 here), so
  // allow for that.
  const cycleMs = (full.p.add.median + full.p.del.median + full.r.add.median + full.r.del.median) * opts.runs * 2;
  const reserveMs = cycleMs + 15_000;
  let lastPairMs = 0;
  log(`scale: populating up to ${opts.scale} attachments with a hostPort on each side, ${chunk} at a time (parallelism ${opts.parallel})`);
  while (done.p < opts.scale) {
    const elapsed = Date.now() - t0;
    // Chunks get slower as the tables grow: assume the next pair costs 1.3x the last one.
    if (done.p > 0 && elapsed + lastPairMs * 1.3 + reserveMs > opts.budget * 1000) {
      log(`  stopping at ${done.p}: going on would pass the ${opts.budget} s budget (--budget, --scale)`);
      break;
    }
    const n = Math.min(chunk, opts.scale - done.p);
    let pairMs = 0;
    for (const side of [P, R]) {
      const atts = batchAtts(side, n, 's', 30000 + done[side.tag], 'e', done[side.tag]);
      const r = await side.worker.call({ op: 'batch', net: nets[side.tag].full, atts, cmd: 'ADD', parallel: opts.parallel });
      done[side.tag] += n;
      stats[side.tag].ms.push(...r.ms);
      stats[side.tag].totalMs += r.totalMs;
      stats[side.tag].retries += r.retries;
      pairMs += r.totalMs;
    }
    lastPairMs = pairMs;
    log(`  ${done.p} each (last ${chunk}: ${(pairMs / 1000).toFixed(1)} s both sides)`);
  }
  const side = (k) => ({ totalMs: Math.round(stats[k].totalMs), addCallMs: summary(stats[k].ms), retries: stats[k].retries });
  return { requested: opts.scale, existing: done.p, p: side('p'), r: side('r') };
}

async function main() {
  preflight();
  const before = hostSnapshot();
  const loadBefore = loadavg();
  if (loadBefore[0] > cpus().length * 0.75) log(`load average ${loadBefore[0].toFixed(1)} on ${cpus().length} CPUs: figures will be noisy (ratios are interleaved, so less so)`);
  const iptablesBackend = /\((\w+)\)/.exec(sh('iptables', ['--version']).stdout)?.[1] ?? 'unknown';
  const dataDir = mkdtempSync(join(tmpdir(), `${prefix}-data-`));
  cleanupSteps.push(() => rmSync(dataDir, { recursive: true, force: true }));
  log(`prefix ${prefix}, data ${dataDir}, runs ${opts.runs}, scale ${opts.scale}, burst ${opts.burst} at ${opts.parallel}`);

  // A private copy of the executable: other people rebuilding dist/ meanwhile must not change
  // what is measured half-way through (build.mjs renames a new file into place).
  const binDir = join(dataDir, 'bin');
  mkdirSync(binDir);
  const pierBin = join(binDir, 'pier');
  copyFileSync(PIER, pierBin);
  linkSync(pierBin, join(binDir, 'pier-ipam'));
  const build = {
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { check: false }).stdout.trim(),
    srcDirty: sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { check: false }).stdout.trim() !== '',
    binaryBuilt: statSync(PIER).mtime.toISOString(),
    binaryBytes: statSync(PIER).size,
  };

  // /run/pier must exist as a mount point (Pier makes it anyway); the bench leaves it. The
  // iptables-nft backend takes no /run/xtables.lock; the legacy one does, and makes it.
  mkdirSync('/run/pier', { recursive: true, mode: 0o700 });
  const P = makeSide('p', dataDir);
  const R = makeSide('r', dataDir);
  const nets = {
    p: { bare: pierNet(join(dataDir, 'pier'), binDir, 'bare'), full: pierNet(join(dataDir, 'pier'), binDir, 'full') },
    r: { bare: refNet(join(dataDir, 'ref'), 'bare'), full: refNet(join(dataDir, 'ref'), 'full') },
  };
  const results = {};
  let failure;
  try {
    await scenarios(P, R, nets, pierBin, results);
  } catch (err) {
    // Keep what was measured: the JSON still gets written, with the error.
    failure = err;
    results.error = err instanceof Error ? err.message : String(err);
  }

  P.worker.close();
  R.worker.close();
  cleanup();
  const after = hostSnapshot();
  const diff = hostDiff(before, after);
  const ours = JSON.stringify(diff).includes(prefix);
  results.hostCheck = { unchanged: Object.keys(diff).length === 0, leftoversWithOurPrefix: ours, diff };

  const doc = {
    when: new Date().toISOString(),
    wallSeconds: Math.round((Date.now() - t0) / 100) / 10,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGb: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, iptablesBackend, loadavg1mBefore: loadBefore[0], loadavg1mAfter: loadavg()[0] },
    options: opts,
    prefix,
    build,
    results,
    ratios: ratios(results),
  };
  mkdirSync(opts.out, { recursive: true });
  const file = join(opts.out, `${doc.when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  printTable(doc);
  console.log(`\nJSON: ${file}`);
  console.log(`wall time ${doc.wallSeconds} s; real host ${results.hostCheck.unchanged ? 'unchanged' : `changed meanwhile (by others? see hostCheck): ${JSON.stringify(diff)}`}`);
  if (ours) {
    console.error(`leftovers named ${prefix} on the real host`);
    process.exitCode = 1;
  }
  if (failure) throw failure;
  if (opts.agent) runAgentBench();
}

/**
 * The cluster agent's part (scripts/bench-agent.ts, about 4 minutes more): its own control plane
 * and simulated nodes, after the plugin's figures so neither disturbs the other.
 */
function runAgentBench() {
  log('the cluster agent: scripts/bench-agent.ts (--no-agent skips it)');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bench-agent.ts'), '--out', opts.out], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) {
    console.error('the agent benchmark failed');
    process.exitCode = 1;
  }
}

/** Every measurement, in order; fills `results` as it goes. */
async function scenarios(P, R, nets, pierBin, results) {
  // Warm-up: one full cycle each, so page cache and first-time setup (bridge creation, nft
  // table, iptables chains) are not in the figures.
  log('warm-up');
  await cycles([{ side: P, net: nets.p.bare }, { side: R, net: nets.r.bare }], 1, false);
  await cycles([{ side: P, net: nets.p.full }, { side: R, net: nets.r.full }], 1, true);

  log('start-up floor: dist/pier --version vs node -e 0');
  {
    const pier = [];
    const node = [];
    for (let i = 0; i < opts.runs; i++) {
      const a = () => P.worker.call({ op: 'exec', file: pierBin, args: ['--version'] }).then((r) => pier.push(r.ms));
      const b = () => P.worker.call({ op: 'exec', file: process.execPath, args: ['-e', '0'] }).then((r) => node.push(r.ms));
      if (i % 2) await b().then(a);
      else await a().then(b);
    }
    results.startup = { pierVersion: summary(pier), nodeE0: summary(node) };
  }

  log('bare ADD/DEL');
  results.bare = await cycles([{ side: P, net: nets.p.bare }, { side: R, net: nets.r.bare }], opts.runs, false);
  log('full ADD/DEL');
  results.full = await cycles([{ side: P, net: nets.p.full }, { side: R, net: nets.r.full }], opts.runs, true);

  log('peak RSS of one Pier ADD');
  {
    const measure = async (net, withPort) => {
      const kb = [];
      for (let i = 0; i < 3; i++) {
        const att = { containerId: cid('rss'), netns: P.podPath, ifname: 'eth0', ...(withPort && { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] }) };
        const r = await P.worker.call({ op: 'rss', net, att });
        await P.worker.call({ op: 'del', net, att });
        kb.push(r.maxRssKb);
      }
      return summary(kb.map((k) => k / 1024));
    };
    results.rssMb = { bareAdd: await measure(nets.p.bare, false), fullAdd: await measure(nets.p.full, true) };
  }

  log(`burst: ${opts.burst} full attachments at parallelism ${opts.parallel}, ${opts.burstRounds} round(s) per side`);
  {
    const b = { p: { add: [], del: [], total: [], addCallMs: [], retries: 0 }, r: { add: [], del: [], total: [], addCallMs: [], retries: 0 } };
    for (let round = 0; round < opts.burstRounds; round++) {
      for (const side of round % 2 ? [R, P] : [P, R]) {
        const net = nets[side.tag].full;
        const atts = batchAtts(side, opts.burst, 'b', 20000, 'b');
        const a = await side.worker.call({ op: 'batch', net, atts, cmd: 'ADD', parallel: opts.parallel });
        const d = await side.worker.call({ op: 'batch', net, atts, cmd: 'DEL', parallel: opts.parallel });
        b[side.tag].add.push(a.totalMs);
        b[side.tag].del.push(d.totalMs);
        b[side.tag].total.push(a.totalMs + d.totalMs);
        b[side.tag].addCallMs.push(...a.ms);
        b[side.tag].retries += a.retries + d.retries;
        log(`  ${side.tag === 'p' ? 'pier' : 'reference'}: ADD ${(a.totalMs / 1000).toFixed(1)} s, DEL ${(d.totalMs / 1000).toFixed(1)} s, ${a.retries + d.retries} retries`);
      }
    }
    results.burst = Object.fromEntries(
      Object.entries(b).map(([k, v]) => [k, { addTotalMs: summary(v.add), delTotalMs: summary(v.del), totalMs: summary(v.total), addCallMs: summary(v.addCallMs), retries: v.retries }]),
    );
  }

  if (opts.scale > 0) {
    results.scalePopulate = await populate(P, R, nets, results.full);
    const n = results.scalePopulate.existing;
    log(`scale: full ADD/DEL with ${n} existing attachments`);
    results.scale = { existing: n, at0: results.full, atN: await cycles([{ side: P, net: nets.p.full }, { side: R, net: nets.r.full }], opts.runs, true) };
  }

  if (opts.criRuns > 0) {
    log(`CRI: pod sandboxes through containerd, ${opts.criRuns} per side and build (scripts/bench-cri.ts)`);
    results.cri = criBench(dirname(pierBin));
  }
}

/**
 * Runs scripts/bench-cri.ts (TypeScript, through tsx, as the tests run) with the private copy of
 * Pier; its JSON is `{c1?, c2?: {containerd, p: {run, stopRemove}, r: {...}}, error?}`.
 */
function criBench(binDir) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/bench-cri.ts'), '--runs', String(opts.criRuns), '--pier', binDir], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 30 * 60_000,
  });
  const last = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(last);
  } catch {
    return { error: `bench-cri exited ${r.status ?? r.signal}: ${r.stdout.slice(-500)}` };
  }
}

// ---------------------------------------------------------------- ratios and the table

function ratios(r) {
  const m = (path) => path.split('.').reduce((o, k) => o?.[k], r)?.median;
  const out = {};
  const add = (name, a, b, vs, target) => {
    const x = m(a);
    const y = m(b);
    if (x === undefined || y === undefined) return;
    out[name] = { value: Math.round((x / y) * 100) / 100, vs, ...(target !== undefined && { target, met: x / y <= target }) };
  };
  // A guard is no goal: the figure is what it is (a start-up floor) and must not grow past
  // the band it was measured in.
  const guard = (name, a, b, vs, band) => {
    add(name, a, b, vs);
    if (out[name]) Object.assign(out[name], { guard: band, met: out[name].value <= band[1] });
  };
  add('bareAdd', 'bare.p.add', 'bare.r.add', 'reference bridge+host-local');
  add('bareDel', 'bare.p.del', 'bare.r.del', 'reference bridge+host-local');
  guard('bareAddVsNode', 'bare.p.add', 'startup.nodeE0', 'node -e 0', [1.7, 1.8]);
  add('fullAdd', 'full.p.add', 'full.r.add', 'reference chain', 0.9);
  add('fullDel', 'full.p.del', 'full.r.del', 'reference chain', 0.4);
  guard('versionVsNode', 'startup.pierVersion', 'startup.nodeE0', 'node -e 0', [1.35, 1.45]);
  add('fullDel2', 'full.p.del2', 'full.r.del2', "reference chain, containerd's second DEL");
  for (const c of ['c1', 'c2']) {
    if (!r.cri?.[c]) continue;
    add(`cri.${c}.run`, `cri.${c}.p.run`, `cri.${c}.r.run`, `reference chain through ${r.cri[c].containerd}: RunPodSandbox`, 0.85);
    add(`cri.${c}.stopRemove`, `cri.${c}.p.stopRemove`, `cri.${c}.r.stopRemove`, `reference chain through ${r.cri[c].containerd}: Stop+RemovePodSandbox`, 0.8);
  }
  add('burstTotal', 'burst.p.totalMs', 'burst.r.totalMs', 'reference chain', 0.6);
  add('pierAddAtNVs0', 'scale.atN.p.add', 'scale.at0.p.add', 'Pier ADD with 0 existing', 1.1);
  add('refAddAtNVs0', 'scale.atN.r.add', 'scale.at0.r.add', 'reference ADD with 0 existing');
  add('pierDelAtNVs0', 'scale.atN.p.del', 'scale.at0.p.del', 'Pier DEL with 0 existing');
  add('refDelAtNVs0', 'scale.atN.r.del', 'scale.at0.r.del', 'reference DEL with 0 existing');
  add('fullAddAtN', 'scale.atN.p.add', 'scale.atN.r.add', 'reference chain, both at N');
  add('fullDelAtN', 'scale.atN.p.del', 'scale.atN.r.del', 'reference chain, both at N');
  const rss = r.rssMb?.fullAdd?.max;
  if (rss !== undefined) out.rssFullAddMb = { value: rss, vs: 'MB, absolute (max of the runs)', target: 70, met: rss <= 70 };
  return out;
}

function printTable(doc) {
  const r = doc.results;
  const x = doc.ratios;
  const f = (s) => (s ? `${s.median.toFixed(1)} [${s.p10.toFixed(1)}–${s.p90.toFixed(1)}]` : '');
  const rows = [];
  const row = (name, a, b, ratio) => {
    if (!a && !b) return;
    const goal = ratio?.guard ? `guard: <= ${ratio.guard[1]} (was ${ratio.guard[0]}-${ratio.guard[1]})` : ratio?.target !== undefined ? `<= ${ratio.target}` : '';
    const met = ratio?.met === undefined ? '' : ratio.met ? (ratio.guard ? 'held' : 'yes') : ratio.guard ? 'GREW' : 'NO';
    rows.push([name, f(a), f(b), ratio ? ratio.value.toFixed(2) : '', goal, met]);
  };
  const { bare, full, startup, burst, scale, rssMb } = r;
  const b = `burst ${doc.options.burst}@${doc.options.parallel}`;
  row('bare ADD (ms)', bare?.p.add, bare?.r.add, x.bareAdd);
  row('bare DEL (ms)', bare?.p.del, bare?.r.del, x.bareDel);
  row('bare ADD vs node -e 0 (ms)', bare?.p.add, startup?.nodeE0, x.bareAddVsNode);
  row('full ADD (ms)', full?.p.add, full?.r.add, x.fullAdd);
  row('full DEL (ms)', full?.p.del, full?.r.del, x.fullDel);
  row("full DEL again, nothing left (containerd's 2nd) (ms)", full?.p.del2, full?.r.del2, x.fullDel2);
  row('--version vs node -e 0 (ms)', startup?.pierVersion, startup?.nodeE0, x.versionVsNode);
  row(`${b} ADD total (ms)`, burst?.p.addTotalMs, burst?.r.addTotalMs);
  row(`${b} DEL total (ms)`, burst?.p.delTotalMs, burst?.r.delTotalMs);
  row(`${b} ADD+DEL (ms)`, burst?.p.totalMs, burst?.r.totalMs, x.burstTotal);
  row(`${b} one ADD in it (ms)`, burst?.p.addCallMs, burst?.r.addCallMs);
  if (scale) {
    const n = scale.existing;
    row(`full ADD, ${n} existing (ms)`, scale.atN.p.add, scale.atN.r.add, x.fullAddAtN);
    row(`full DEL, ${n} existing (ms)`, scale.atN.p.del, scale.atN.r.del, x.fullDelAtN);
    row(`Pier ADD, ${n} vs 0 existing`, scale.atN.p.add, scale.at0.p.add, x.pierAddAtNVs0);
    row(`Pier DEL, ${n} vs 0 existing`, scale.atN.p.del, scale.at0.p.del, x.pierDelAtNVs0);
    row(`ref. ADD, ${n} vs 0 existing`, scale.atN.r.add, scale.at0.r.add, x.refAddAtNVs0);
    row(`ref. DEL, ${n} vs 0 existing`, scale.atN.r.del, scale.at0.r.del, x.refDelAtNVs0);
  }
  for (const c of ['c1', 'c2']) {
    const cr = r.cri?.[c];
    if (!cr) continue;
    row(`CRI ${cr.containerd}: RunPodSandbox (ms)`, cr.p.run, cr.r.run, x[`cri.${c}.run`]);
    row(`CRI ${cr.containerd}: Stop+RemovePodSandbox (ms)`, cr.p.stopRemove, cr.r.stopRemove, x[`cri.${c}.stopRemove`]);
  }
  row('peak RSS, bare ADD (MB)', rssMb?.bareAdd);
  row('peak RSS, full ADD (MB)', rssMb?.fullAdd, undefined, x.rssFullAddMb);
  const head = ['figure', 'Pier median [p10–p90]', 'other median [p10–p90]', 'ratio', 'target or guard', 'met'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(w[i])).join(' | ')} |`;
  console.log(line(head));
  console.log(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const c of rows) console.log(line(c));
  console.log('\n"other": the reference plugins; node -e 0; or Pier/reference with 0 existing attachments (see the figure).');
  if (full) console.log('reference chain, median per plugin (ms): ADD', JSON.stringify(full.r.addPerPlugin), 'DEL', JSON.stringify(full.r.delPerPlugin));
  const retries = ['bare', 'full'].map((k) => r[k] && `${k} ${r[k].p.retries}/${r[k].r.retries}`).concat(burst && `burst ${burst.p.retries}/${burst.r.retries}`, r.scalePopulate && `populate ${r.scalePopulate.p?.retries}/${r.scalePopulate.r?.retries}`, scale && `scale ${scale.atN.p.retries}/${scale.atN.r.retries}`);
  console.log('code-11 retries, Pier/reference:', retries.filter(Boolean).join(', '));
  const sp = r.scalePopulate;
  if (sp && sp.existing < sp.requested) console.log(`scale: ${sp.existing} of the ${sp.requested} requested existing attachments, to stay within --budget ${doc.options.budget} s`);
  if (r.cri?.error) console.log(`CRI: ${r.cri.error}`);
  if (r.error) console.log(`\nINCOMPLETE: ${r.error}`);
}

try {
  await main();
} catch (err) {
  log(`failed: ${err instanceof Error ? err.stack : err}`);
  process.exitCode = 1;
} finally {
  cleanup();
}

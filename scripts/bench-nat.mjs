#!/usr/bin/env node
// NAT bench for issue 4: full ADD and DEL latency of Pier (IPAM + masquerade + one hostPort, one
// process) against the reference chain bridge(ipMasq) + host-local + portmap from /usr/lib/cni
// run the way libcni runs a conflist (ADD in order, each plugin given the previous result as
// prevResult; DEL in reverse, each given the cached final result), in ONE interleaved run; and
// the number of rules in Pier's nft table with 1 and with N attachments that each map a hostPort
// (next to the iptables rules the reference chain leaves for the same pods).
//
// Isolation: everything happens in a throwaway netns playing the host (`pn<4 hex>-host`: both
// bridges, Pier's table, the reference's iptables rules) and pod netns of the same prefix; a
// worker (this script with --worker) runs inside the host netns and execs the plugins, as a
// runtime would. All of it, and the data dirs, is removed at the end, on failure and on signals.
//
// Usage: node scripts/bench-nat.mjs [--runs N=20] [--scale N=200] [--json]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const PIER = join(ROOT, 'dist/pier');
const REF = '/usr/lib/cni';
const CNI_VERSION = '1.0.0'; // the newest the reference plugins speak
const PER_NETNS = 50; // scale pods share a netns, with different ifnames
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

if (process.argv[2] === '--worker') {
  process.stdout.write(JSON.stringify(worker(JSON.parse(process.argv[3]))));
} else {
  coordinator(process.argv.slice(2));
}

// ------------------------------------------------------------------ coordinator (real host netns)

function coordinator(argv) {
  const o = { runs: 20, scale: 200, json: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') o.runs = Number(argv[++i]);
    else if (argv[i] === '--scale') o.scale = Number(argv[++i]);
    else if (argv[i] === '--json') o.json = true;
    else throw new Error(`unknown argument ${argv[i]}; usage: bench-nat.mjs [--runs N] [--scale N] [--json]`);
  }
  if (!(o.runs >= 1 && o.scale >= 1)) throw new Error('--runs and --scale must be positive');
  if (process.getuid?.() !== 0) throw new Error('needs root (netns, bridges, nft)');
  for (const f of [PIER, `${REF}/bridge`, `${REF}/host-local`, `${REF}/portmap`]) {
    if (!existsSync(f)) throw new Error(`${f} is missing${f === PIER ? ' (npm run build)' : ''}`);
  }

  const prefix = `pn${randomBytes(2).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-bench-`));
  const netns = [];
  const cleanup = () => {
    // The host netns takes the bridges, host veths, nft table and iptables rules with it.
    for (const ns of netns.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    netns.length = 0;
    rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130); });
  const addNetns = (name) => {
    netns.push(name);
    const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  };

  try {
    const host = addNetns(`${prefix}-host`);
    const groups = Math.ceil(o.scale / PER_NETNS);
    const plan = {
      prefix, dir, runs: o.runs, scale: o.scale,
      latencyNetns: { pier: addNetns(`${prefix}-lp`), ref: addNetns(`${prefix}-lr`) },
      scaleNetns: {
        pier: Array.from({ length: groups }, (_, i) => addNetns(`${prefix}-sp${i}`)),
        ref: Array.from({ length: groups }, (_, i) => addNetns(`${prefix}-sr${i}`)),
      },
    };
    const r = spawnSync('ip', ['netns', 'exec', host, process.execPath, SELF, '--worker', JSON.stringify(plan)], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20,
    });
    if (r.status !== 0) throw new Error(`worker failed (${r.status ?? r.signal})`);
    const res = JSON.parse(r.stdout);
    res.machine = { cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release(), node: process.version };
    if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
    else report(res);
  } finally {
    cleanup();
  }
}

function report(res) {
  const f = (x) => x.toFixed(1);
  const { add, del } = res.latency;
  const line = (what, s) =>
    `${what.padEnd(5)} pier median ${f(s.pier.median)} ms (p10 ${f(s.pier.p10)}, p90 ${f(s.pier.p90)})   ` +
    `reference median ${f(s.ref.median)} ms (p10 ${f(s.ref.p10)}, p90 ${f(s.ref.p90)})   ` +
    `pier/ref ${(s.pier.median / s.ref.median).toFixed(2)}`;
  console.log(`NAT bench, ${res.runs} interleaved runs each (${res.machine.cpus} x ${res.machine.cpu}, Linux ${res.machine.kernel}, node ${res.machine.node})`);
  console.log('  one more pod on a node that has one: IPAM + masquerade + one tcp hostPort');
  console.log(`  ${line('ADD', add)}`);
  console.log(`  ${line('DEL', del)}`);
  console.log(`  reference ADD = bridge ${f(res.latency.refParts.bridgeAdd)} + portmap ${f(res.latency.refParts.portmapAdd)} ms; ` +
    `DEL = portmap ${f(res.latency.refParts.portmapDel)} + bridge ${f(res.latency.refParts.bridgeDel)} ms (medians)`);
  console.log(`  ref DEL/ADD ${(del.ref.median / add.ref.median).toFixed(2)}, pier DEL/ADD ${(del.pier.median / add.pier.median).toFixed(2)}`);
  const s = res.scale;
  console.log(`rules with 1 / ${res.scale.n} attachments each mapping a hostPort:`);
  console.log(`  pier nft table: ${s.pier.rules1} / ${s.pier.rulesN} rules (${s.pier.elementsN} set/map elements at ${s.n})`);
  console.log(`  reference iptables (nat + filter): ${s.ref.rules1} / ${s.ref.rulesN} rules, ${s.ref.chains1} / ${s.ref.chainsN} chains`);
}

// ------------------------------------------------------------------- worker (inside host netns)

function worker(plan) {
  const { prefix, dir, runs } = plan;
  const pierTable = `pier_bench_${prefix}`;
  const pierConf = {
    cniVersion: CNI_VERSION, name: `${prefix}-pier`, type: 'pier', bridge: `${prefix}pb`,
    isGateway: true, ipMasq: true, nftTable: pierTable, capabilities: { portMappings: true },
    ipam: { type: 'pier-ipam', ranges: [[{ subnet: '10.230.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'pier') },
  };
  // The conflist a runtime would hold for the reference chain.
  const refList = {
    cniVersion: CNI_VERSION, name: `${prefix}-ref`,
    plugins: [
      {
        type: 'bridge', bridge: `${prefix}rb`, isGateway: true, ipMasq: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.231.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'host-local') },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };

  const exec = (plugin, command, att, conf) => {
    const env = {
      CNI_COMMAND: command, CNI_CONTAINERID: att.id, CNI_NETNS: `/run/netns/${att.netns}`, CNI_IFNAME: att.ifname,
      CNI_PATH: `${join(ROOT, 'dist')}:${REF}`, PATH, PIER_LOG_FILE: join(dir, 'pier.log'),
    };
    const t = process.hrtime.bigint();
    const r = spawnSync(plugin, [], { env, input: JSON.stringify(conf), encoding: 'utf8', timeout: 60_000 });
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`${plugin} ${command} ${att.id}: ${r.status ?? r.signal} ${r.stdout} ${r.stderr}`);
    return { ms, result: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
  };
  const mappings = (port) => [{ hostPort: port, containerPort: 80, protocol: 'tcp' }];

  // libcni: each plugin's conf is the list's name and cniVersion plus the plugin's fields, the
  // runtimeConfig of the capabilities it declares, and prevResult (ADD: the previous plugin's
  // result; DEL: the cached result of the whole ADD).
  const pier = {
    add(att, port) {
      const r = exec(PIER, 'ADD', att, { ...pierConf, runtimeConfig: { portMappings: mappings(port) } });
      att.cached = r.result;
      return { ms: r.ms };
    },
    del(att, port) {
      return { ms: exec(PIER, 'DEL', att, { ...pierConf, runtimeConfig: { portMappings: mappings(port) }, prevResult: att.cached }).ms };
    },
  };
  const pluginConf = (p, port, prevResult) => ({
    cniVersion: refList.cniVersion, name: refList.name, ...p,
    ...(p.capabilities?.portMappings && { runtimeConfig: { portMappings: mappings(port) } }),
    ...(prevResult && { prevResult }),
  });
  const ref = {
    add(att, port) {
      let prev;
      const parts = [];
      for (const p of refList.plugins) {
        const r = exec(`${REF}/${p.type}`, 'ADD', att, pluginConf(p, port, prev));
        prev = r.result;
        parts.push(r.ms);
      }
      att.cached = prev;
      return { ms: parts.reduce((a, b) => a + b, 0), parts };
    },
    del(att, port) {
      const parts = [];
      for (const p of [...refList.plugins].reverse()) parts.push(exec(`${REF}/${p.type}`, 'DEL', att, pluginConf(p, port, att.cached)).ms);
      return { ms: parts.reduce((a, b) => a + b, 0), parts };
    },
  };
  const sides = { pier, ref };
  const basePort = { pier: 20000, ref: 30000 };

  // The node already has one pod per side (bridge, table, chains exist), as it would.
  const resident = { pier: [], ref: [] };
  for (const side of ['pier', 'ref']) {
    const att = { id: `${prefix}-${side}-resident`, netns: plan.scaleNetns[side][0], ifname: 'eth0' };
    sides[side].add(att, basePort[side]);
    resident[side].push(att);
  }
  const counts1 = { pier: pierRules(pierTable), ref: iptablesRules() };

  // Latency: alternate which side goes first, so neither always runs on a warmer cache.
  const warmup = 2;
  const t = { pier: { add: [], del: [] }, ref: { add: [], del: [] } };
  const parts = { bridgeAdd: [], portmapAdd: [], portmapDel: [], bridgeDel: [] };
  for (let i = 0; i < warmup + runs; i++) {
    const order = i % 2 ? ['pier', 'ref'] : ['ref', 'pier'];
    const atts = {};
    const port = { pier: 18000, ref: 28000 };
    for (const side of order) {
      atts[side] = { id: `${prefix}-${side}-lat${i}`, netns: plan.latencyNetns[side], ifname: 'eth0' };
      const r = sides[side].add(atts[side], port[side]);
      if (i >= warmup) {
        t[side].add.push(r.ms);
        if (side === 'ref') [parts.bridgeAdd[i], parts.portmapAdd[i]] = r.parts;
      }
    }
    for (const side of order) {
      const r = sides[side].del(atts[side], port[side]);
      if (i >= warmup) {
        t[side].del.push(r.ms);
        if (side === 'ref') [parts.portmapDel[i], parts.bridgeDel[i]] = r.parts;
      }
    }
  }

  // Scale: N attachments per side, each with its own hostPort.
  for (let n = 1; n < plan.scale; n++) {
    for (const side of ['pier', 'ref']) {
      const att = { id: `${prefix}-${side}-s${n}`, netns: plan.scaleNetns[side][Math.floor(n / PER_NETNS)], ifname: `eth${n % PER_NETNS}` };
      sides[side].add(att, basePort[side] + n);
    }
  }
  const countsN = { pier: pierRules(pierTable), ref: iptablesRules() };

  return {
    runs,
    latency: {
      add: { pier: stats(t.pier.add), ref: stats(t.ref.add) },
      del: { pier: stats(t.pier.del), ref: stats(t.ref.del) },
      refParts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, stats(v.filter((x) => x !== undefined)).median])),
      raw: t,
    },
    scale: {
      n: plan.scale,
      pier: { rules1: counts1.pier.rules, rulesN: countsN.pier.rules, elements1: counts1.pier.elements, elementsN: countsN.pier.elements },
      ref: { rules1: counts1.ref.rules, rulesN: countsN.ref.rules, chains1: counts1.ref.chains, chainsN: countsN.ref.chains },
    },
  };
}

function pierRules(table) {
  const r = spawnSync('nft', ['-j', 'list', 'table', 'inet', table], { encoding: 'utf8', env: { PATH }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`nft list table: ${r.stderr}`);
  const items = JSON.parse(r.stdout).nftables;
  const elements = items.reduce((n, i) => n + ((i.set ?? i.map)?.elem?.length ?? 0), 0);
  return { rules: items.filter((i) => i.rule).length, elements };
}

/** Rules and user chains the reference left in iptables (nat and filter tables of this netns). */
function iptablesRules() {
  let rules = 0;
  let chains = 0;
  for (const table of ['nat', 'filter']) {
    const r = spawnSync('iptables-save', ['-t', table], { encoding: 'utf8', env: { PATH }, maxBuffer: 64 << 20 });
    if (r.status !== 0) throw new Error(`iptables-save -t ${table}: ${r.stderr}`);
    for (const line of r.stdout.split('\n')) {
      if (line.startsWith('-A ')) rules++;
      else if (line.startsWith(':') && !/^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(line)) chains++;
    }
  }
  return { rules, chains };
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const median = s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { n: s.length, median, p10: q(0.1), p90: q(0.9), min: s[0], max: s[s.length - 1] };
}

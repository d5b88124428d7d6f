#!/usr/bin/env node
// The runtime side of `npm run bench`: a tiny libcni started by scripts/bench.mjs inside a
// throwaway netns that plays the host, so every plugin (Pier or the reference ones) is exec'd
// directly by a process in that netns, as containerd or CRI-O would do, with no `ip netns exec`
// in the timed path.
//
// Protocol: one JSON request per stdin line, `{id, op, ...}`; one JSON reply per stdout line,
// `{id, ok, value}` or `{id, ok: false, error}`. Ops:
//   add   {net, att}              ADD the network list to one attachment; value {ms, calls}
//   del   {net, att}              DEL it (reverse order, cached result as prevResult); {ms, calls}
//   del2  {net, att}              containerd's second DEL: CNI_NETNS="", no prevResult; {ms, calls}
//   batch {net, atts, cmd, parallel} many ADDs or DELs, `parallel` at a time; {totalMs, ms[], retries}
//   exec  {file, args}            run a command (start-up floor); value {ms}
//   rss   {net, att}              ADD under /usr/bin/time; value {ms, maxRssKb}
// A `net` is a conflist: {name, cniVersion, cniPath, env, plugins: [{type, capabilities?, ...}]}.
// An `att` is {containerId, netns, ifname, portMappings?}.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** libcni's result cache (it keeps it on disk; here the worker outlives every call). */
const cache = new Map();
const binCache = new Map();

/** The plugin executable: the first `type` found in CNI_PATH, as libcni's FindInPath does. */
function findPlugin(type, cniPath) {
  const k = `${cniPath}\0${type}`;
  if (!binCache.has(k)) {
    const file = cniPath
      .split(':')
      .map((d) => join(d, type))
      .find((f) => {
        try {
          accessSync(f, constants.X_OK);
          return true;
        } catch {
          return false;
        }
      });
    if (!file) throw new Error(`plugin ${type} not found in ${cniPath}`);
    binCache.set(k, file);
  }
  return binCache.get(k);
}

/** Runs one process with stdin; resolves with its exit, output and wall time. */
function run(file, args, env, input) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      resolve({ code, signal, ms, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => {}); // a plugin that exits without reading stdin (--version)
    child.stdin.end(input ?? '');
  });
}

/**
 * One plugin's stdin, as libcni builds it: the conflist entry plus name and cniVersion, the
 * previous result, and a runtimeConfig holding only the capabilities the entry declares.
 */
function pluginConf(net, plugin, prevResult, rt) {
  const conf = { ...plugin, name: net.name, cniVersion: net.cniVersion };
  if (prevResult) conf.prevResult = prevResult;
  const runtimeConfig = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && rt[cap] !== undefined) runtimeConfig[cap] = rt[cap];
  }
  if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
  return conf;
}

function envFor(net, cmd, att) {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: att.containerId,
    CNI_NETNS: att.netns,
    CNI_IFNAME: att.ifname,
    CNI_PATH: net.cniPath,
    ...net.env,
  };
}

const keyOf = (net, att) => `${net.name}/${att.containerId}/${att.ifname}`;
const runtimeConfigOf = (att) => (att.portMappings?.length ? { portMappings: att.portMappings } : {});

const TRY_AGAIN_LATER = 11;
const MAX_RETRIES = 30;

/**
 * Runs one plugin of the list. A reply with code 11 ("try again later") is retried after a
 * short pause, as the kubelet would retry the sandbox; the retries are counted, and the time
 * includes them.
 */
async function callPlugin(net, plugin, cmd, att, prevResult, wrap) {
  const conf = pluginConf(net, plugin, prevResult, runtimeConfigOf(att));
  const file = findPlugin(plugin.type, net.cniPath);
  const [f, args] = wrap ? wrap(file) : [file, []];
  const start = process.hrtime.bigint();
  for (let retries = 0; ; retries++) {
    const r = await run(f, args, envFor(net, cmd, att), JSON.stringify(conf));
    if (r.code === 0) return { ...r, retries, ms: Number(process.hrtime.bigint() - start) / 1e6 };
    let code;
    try {
      code = JSON.parse(r.stdout).code;
    } catch {
      /* not a CNI error reply */
    }
    if (code !== TRY_AGAIN_LATER || retries >= MAX_RETRIES) {
      throw new Error(`${plugin.type} ${cmd} ${att.containerId}/${att.ifname} exited ${r.code ?? r.signal} after ${retries} retries: ${r.stdout.trim()} ${r.stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 100));
  }
}

/** ADD in chain order, each plugin getting the previous one's result (libcni AddNetworkList). */
async function add(net, att, wrap) {
  const start = process.hrtime.bigint();
  let prev;
  const calls = [];
  for (const plugin of net.plugins) {
    const r = await callPlugin(net, plugin, 'ADD', att, prev, wrap);
    calls.push({ type: plugin.type, ms: r.ms, retries: r.retries, stderr: r.stderr });
    prev = JSON.parse(r.stdout);
  }
  cache.set(keyOf(net, att), prev);
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, calls };
}

/** DEL in reverse order, every plugin getting the cached result (libcni DelNetworkList). */
async function del(net, att) {
  const start = process.hrtime.bigint();
  const prev = cache.get(keyOf(net, att));
  const calls = [];
  for (const plugin of [...net.plugins].reverse()) {
    const r = await callPlugin(net, plugin, 'DEL', att, prev);
    calls.push({ type: plugin.type, ms: r.ms, retries: r.retries });
  }
  cache.delete(keyOf(net, att));
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, calls };
}

/**
 * containerd's second DEL, at pod removal after the DEL of pod stop: reverse order, CNI_NETNS
 * empty, no prevResult (the runtimeConfig is sent again), when nothing is left to remove.
 */
async function del2(net, att) {
  const start = process.hrtime.bigint();
  const calls = [];
  for (const plugin of [...net.plugins].reverse()) {
    const r = await callPlugin(net, plugin, 'DEL', { ...att, netns: '' }, undefined);
    calls.push({ type: plugin.type, ms: r.ms, retries: r.retries });
  }
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, calls };
}

/** Many ADDs or DELs, at most `parallel` in flight, as a busy node's runtime would start them. */
async function batch(net, atts, cmd, parallel) {
  const start = process.hrtime.bigint();
  const ms = new Array(atts.length);
  let retries = 0;
  let next = 0;
  const lane = async () => {
    while (next < atts.length) {
      const i = next++;
      const r = cmd === 'ADD' ? await add(net, atts[i]) : await del(net, atts[i]);
      ms[i] = r.ms;
      retries += r.calls.reduce((n, c) => n + c.retries, 0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, atts.length) }, lane));
  return { totalMs: Number(process.hrtime.bigint() - start) / 1e6, ms, retries };
}

/** ADD with the (single) plugin under GNU time: its peak resident set, in kB. */
async function rss(net, att) {
  let maxRssKb;
  const r = await add(net, att, (file) => ['/usr/bin/time', ['-f', '__PIER_BENCH_RSS__ %M', file]]);
  for (const c of r.calls) {
    const m = /__PIER_BENCH_RSS__ (\d+)/.exec(c.stderr);
    if (m) maxRssKb = Math.max(maxRssKb ?? 0, Number(m[1]));
  }
  return { ms: r.ms, maxRssKb };
}

async function handle(req) {
  switch (req.op) {
    case 'add':
      return add(req.net, req.att).then(({ ms, calls }) => ({ ms, calls: calls.map(({ type, ms: m, retries }) => ({ type, ms: m, retries })) }));
    case 'del':
      return del(req.net, req.att);
    case 'del2':
      return del2(req.net, req.att);
    case 'batch':
      return batch(req.net, req.atts, req.cmd, req.parallel);
    case 'exec': {
      const r = await run(req.file, req.args, { PATH: process.env.PATH ?? '/usr/bin:/bin' });
      if (r.code !== 0) throw new Error(`${req.file} ${req.args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr}`);
      return { ms: r.ms };
    }
    case 'rss':
      return rss(req.net, req.att);
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

// Requests are handled one at a time, in order: the controller interleaves the two sides.
let chain = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const req = JSON.parse(line);
  chain = chain.then(async () => {
    let reply;
    try {
      reply = { id: req.id, ok: true, value: await handle(req) };
    } catch (err) {
      reply = { id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  });
});

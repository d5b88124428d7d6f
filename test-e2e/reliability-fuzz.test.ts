// Hostile input: a seeded generator of >= 5,000 cases run against the built dist/pier inside a
// TestWorld: mutated and truncated JSON, huge stdin, deep nesting, wrong types, path traversal
// and control characters in container IDs, network names, ifnames, dataDir and CNI_ARGS, bogus
// netns paths (files, directories, /proc/self/ns/net, the world's host netns itself), out of
// range ports and prefixes. Every case must end in a CNI result (exit 0) or a CNI error JSON
// (non-zero exit) on stdout, never a stack trace or a signal. Afterwards (successful ADDs
// DELeted) the host netns is as it was (links, addresses, routes, foreign nft rules), in
// particular the host's `eth0`, and no file appeared outside the data dir and the log.
//
// Never used as a netns path here: /proc/1/ns/net and friends (this machine's real netns).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, ROOT, TestWorld, type CniCall } from './cni-harness.ts';
import { callAsync, fileWriteTracer, hostSnapshot, keepLog, nftElements, pathsWritten, pool, prng, seedFor, type Prng } from './reliability-common.ts';
import { run } from './helpers.ts';

const CASES = Number(process.env.RELIABILITY_FUZZ_CASES ?? 5000);
const PARALLEL = 8;

interface Case {
  kind: string;
  call: CniCall;
  stdin: string;
}

describe(`hostile input: ${CASES} generated cases against dist/pier`, () => {
  let w: TestWorld;
  let base: Record<string, any>;
  let pod: string;
  let own: string[];
  let bogus: string[];
  const rnd = prng(seedFor('fuzz', 7004));
  const kinds = new Map<string, { n: number; ok: number; codes: Record<string, number> }>();
  let traces: string;
  let hostBefore: ReturnType<typeof hostSnapshot>;

  before(async () => {
    ensureBuilt();
    w = new TestWorld();
    pod = w.addPod();
    const dir = `${w.dataDir}/fz`;
    base = w.conf('1.0.0', { subnet: '10.234.0.0/24', extra: { ipMasq: true, dataDir: `${dir}/own`, capabilities: { portMappings: true } }, ipam: { dataDir: `${dir}/ipam` } });
    // Pier's own bridge and table may change with the configs it is given (a different subnet's
    // gateway, another network's chains); they are checked for leftover ports and elements.
    // The host's own uplink-like interface: an `eth0` (a veth, peer eth0p) with an address,
    // and a foreign nft table with a rule. Pier must never touch either.
    w.exec('ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    w.exec('ip', ['addr', 'add', '10.234.9.1/24', 'dev', 'eth0']);
    w.exec('ip', ['link', 'set', 'eth0', 'up']);
    w.exec('ip', ['link', 'set', 'eth0p', 'up']);
    const t = w.exec('nft', ['add table inet hostfw; add chain inet hostfw input { type filter hook input priority 0; policy accept; }; add rule inet hostfw input tcp dport 22 accept']);
    assert.equal(t.status, 0, t.stderr);
    // Bogus netns paths: a file, a directory, a symlink to the host netns, and more.
    writeFileSync(`${w.dataDir}/a-file`, 'not a netns');
    mkdirSync(`${w.dataDir}/a-dir`);
    symlinkSync(w.netnsPath(w.host), `${w.dataDir}/host-link`);
    own = [w.netnsPath(w.host), '/proc/self/ns/net', '/proc/thread-self/ns/net', `/run/netns/../netns/${w.host}`, `${w.dataDir}/host-link`];
    bogus = [`${w.dataDir}/a-file`, `${w.dataDir}/a-dir`, '/dev/null', '/proc/self/ns/mnt', '/proc/self/ns/uts', `/run/netns/${w.prefix}-nope`, 'relative/netns', '/', `/${'x'.repeat(5000)}`, `${w.netnsPath(pod)}\n`, `${w.netnsPath(pod)}/..`];
    // One good ADD and DEL first: the bridge and Pier's table exist before the snapshot.
    const r = await callAsync(w, { command: 'ADD', containerId: 'warmup', netns: w.netnsPath(pod), ifname: 'eth0' }, base);
    assert.equal(r.status, 0, r.stdout);
    const d = await callAsync(w, { command: 'DEL', containerId: 'warmup', netns: w.netnsPath(pod), ifname: 'eth0' }, base);
    assert.equal(d.status, 0, d.stdout);
    hostBefore = hostSnapshot(w, (n) => n === base.bridge, base.nftTable);
    traces = `${w.dataDir}/traces`;
    mkdirSync(traces);
  });

  after(() => {
    const summary = Object.fromEntries([...kinds].map(([k, v]) => [k, `${v.n} cases, ${v.ok} ok, codes ${JSON.stringify(v.codes)}`]));
    console.log(`# fuzz figures:\n${JSON.stringify(summary, null, 1)}`);
    keepLog(w, 'fuzz');
    w?.cleanup.runAll();
  });

  // ---- the generator ----
  const CONTROL = ['\x01', '\x07', '\x1b[2J', '\r', '\n', '\t', '\x7f', '\u202e', '\u0085', '\ud83d\ude00', '\uffff'];
  const TRAVERSAL = ['..', '../..', '../../etc/passwd', '/etc/passwd', './x', 'a/../../b', '%2e%2e%2f', '..\\..\\x', '~root']; // check-test-paths: hostile input
  const str = (r: Prng): string => {
    switch (r.int(8)) {
      case 0: return r.pick(TRAVERSAL);
      case 1: return `x${r.pick(CONTROL)}y`;
      case 2: return 'a'.repeat(r.pick([16, 64, 65, 256, 4096, 70_000]));
      case 3: return r.pick(['', ' ', '.', '-a', '_a', 'a b', 'a:b', 'a=b', 'a;b', 'eth0', 'lo', 'CON']);
      case 4: return `${r.pick(TRAVERSAL)}${r.pick(CONTROL)}`;
      default: return `v${r.int(1e6)}`;
    }
  };
  const value = (r: Prng, depth = 0): unknown => {
    switch (r.int(depth > 2 ? 9 : 12)) {
      case 0: return null;
      case 1: return r.chance(0.5);
      case 2: return r.pick([0, -1, 1, 65535, 65536, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, 0.5, -0]);
      case 3: case 4: case 5: return str(r);
      case 6: return [];
      case 7: return {};
      case 8: return r.pick(['10.234.0.5/24', '10.234.0.0/33', '10.234.0.0/-1', '300.1.1.1', 'fd00::/129', '::', '0.0.0.0/0', '10.234.0.1']);
      case 9: return [value(r, depth + 1), value(r, depth + 1)];
      case 10: return { [str(r)]: value(r, depth + 1), __proto__x: value(r, depth + 1) };
      default: return JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}');
    }
  };
  /** Every path (list of keys) into a JSON value. */
  const paths = (v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) => {
    out.push(at);
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, Array.isArray(v) ? Number(k) : k], out);
    return out;
  };
  const setAt = (root: any, path: (string | number)[], v: unknown, del = false) => {
    if (!path.length) return v;
    let o = root;
    for (const k of path.slice(0, -1)) o = o[k];
    if (del) delete o[path[path.length - 1]];
    else o[path[path.length - 1]] = v;
    return root;
  };
  const clone = () => JSON.parse(JSON.stringify(base));

  /**
   * A config is only run when it cannot make Pier write outside this world or add host state
   * a DEL would not remove: the data dirs, bridge, nft table and IPAM type are either the base
   * ones or invalid. (A valid other dataDir is trusted config from a root runtime, not hostile
   * input; running it would write to the real /var/lib/pier.)
   */
  const safe = (text: string): boolean => {
    let p: any;
    try {
      p = JSON.parse(text);
    } catch {
      return true;
    }
    if (!p || typeof p !== 'object' || Array.isArray(p)) return true;
    // null reads as "absent" (Go's zero value), i.e. the default, like a missing key.
    const dirOk = (v: unknown) => v !== undefined && v !== null && (typeof v !== 'string' || !v.startsWith('/') || v.split('/').includes('..') || /[\0-\x1f]/.test(v) || v.startsWith(`${w.dataDir}/`));
    const same = (v: unknown, want: unknown, valid: (s: string) => boolean) => v === want || (v !== null && v !== undefined && (typeof v !== 'string' || !valid(v)));
    const ipam = p.ipam;
    const pierIpam = ipam && typeof ipam === 'object' && ipam.type === 'pier-ipam';
    return dirOk(p.dataDir) && (!pierIpam || dirOk(ipam.dataDir))
      && (ipam === undefined || ipam === null || typeof ipam !== 'object' || ['pier-ipam', undefined].includes(ipam.type) || typeof ipam.type !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(ipam.type) || ipam.type === 'pier')
      && (p.bridge === undefined ? false : same(p.bridge, base.bridge, (s) => s.length > 0 && Buffer.byteLength(s) <= 15 && !/[/:\s]/.test(s) && s !== 'eth0' && s !== 'lo' && s !== 'eth0p'))
      && same(p.nftTable, base.nftTable, (s) => /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(s))
      && (p.type === undefined || typeof p.type === 'string')
      && JSON.stringify(p.ipam?.ranges ?? null).includes('10.234.') !== false;
  };

  const attachEnv = (r: Prng, i: number): CniCall => ({
    command: r.pick(['ADD', 'ADD', 'ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']) as CniCall['command'],
    containerId: `f${i}`,
    netns: w.netnsPath(pod),
    ifname: `e${i % 100000}`,
    path: `${ROOT}/dist`,
  });

  function generate(r: Prng, i: number): Case {
    const call = attachEnv(r, i);
    const roll = r.int(100);
    const text = JSON.stringify(base);
    if (roll < 22) {
      // Byte mutations of the good config: flips, inserts, deletes, duplicated slices.
      let s = text;
      for (let k = 1 + r.int(4); k > 0; k--) {
        const at = r.int(s.length);
        const op = r.int(4);
        if (op === 0) s = s.slice(0, at) + String.fromCharCode(r.int(128)) + s.slice(at + 1);
        else if (op === 1) s = s.slice(0, at) + r.pick(['"', '{', '}', '[', ']', ',', ':', '\\', '\\u0000', 'null', '1e999', r.pick(CONTROL)]) + s.slice(at);
        else if (op === 2) s = s.slice(0, at) + s.slice(at + 1 + r.int(8));
        else s = s.slice(0, at) + s.slice(r.int(s.length), r.int(s.length)) + s.slice(at);
      }
      return { kind: 'mutated JSON', call, stdin: s };
    }
    if (roll < 32) return { kind: 'truncated JSON', call, stdin: text.slice(0, r.int(text.length)) };
    if (roll < 33) {
      const pad = 'x'.repeat(1024 * 1024 + r.int(200_000));
      return { kind: 'huge stdin (> 1 MiB)', call, stdin: r.chance(0.5) ? JSON.stringify({ ...base, pad }) : `${text}${pad}` };
    }
    if (roll < 36) {
      const d = r.pick([1000, 100_000, 500_000]);
      const nest = r.chance(0.5) ? `${'['.repeat(d)}${']'.repeat(d)}` : `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`;
      const where = r.pick(['top', 'prevResult', 'runtimeConfig', 'args']);
      return { kind: 'deep nesting', call, stdin: where === 'top' ? nest : `${text.slice(0, -1)},"${where}":${nest}}` };
    }
    if (roll < 56) {
      // Wrong types and hostile values anywhere in the config; sometimes a key removed.
      const c = clone();
      for (let k = 1 + r.int(3); k > 0; k--) {
        const ps = paths(c).filter((p) => p.length > 0);
        const p = r.pick(ps);
        setAt(c, p, value(r), r.chance(0.15));
      }
      return { kind: 'wrong types', call, stdin: JSON.stringify(c) };
    }
    if (roll < 74) {
      // Hostile env: container ID, ifname, CNI_ARGS, CNI_PATH, command.
      const which = r.int(6);
      const s = str(r).replaceAll('\0', '');
      if (which === 0) call.containerId = r.chance(0.3) ? `f${i}${s}` : s;
      else if (which === 1) call.ifname = r.pick([s, 'eth0', 'lo', 'eth0p', base.bridge, 'a'.repeat(16), '.', '..', 'a/b', 'a:b', 'a b', '\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9']);
      else if (which === 2) call.args = r.pick([s, `IP=${s}`, 'IP=10.234.0.1', 'IP=10.234.1.5', 'IP=10.234.0.7;IgnoreUnknown=1', 'MAC=zz:zz', 'MAC=ff:ff:ff:ff:ff:ff', `K8S_POD_NAME=${s}`, '=;;==', 'A=1=2', `X=${'y'.repeat(100_000)}`, 'IgnoreUnknown=1;FOO=../../x']);
      else if (which === 3) call.path = r.pick([s, '', `${w.dataDir}/a-dir`, '/nonexistent', `::${ROOT}/dist::`]);
      else if (which === 4) call.command = r.pick(['add', 'ADD ', 'DELETE', '', 'VERSION\n', s]) as never;
      else delete (call as any)[r.pick(['containerId', 'netns', 'ifname'])];
      return { kind: 'hostile env', call, stdin: text };
    }
    if (roll < 80) {
      // Network names and data dirs: traversal, control characters, not directories.
      const c = clone();
      const s = str(r);
      if (r.chance(0.5)) c.name = r.pick([s, `../${c.name}`, `${c.name}/x`, `.${c.name}`, `${c.name}\n`]);
      else {
        const dir = r.pick([`${w.dataDir}/fz/../../..`, `${w.dataDir}/a-file`, `${w.dataDir}/a-file/sub`, 'relative/dir', `${w.dataDir}/${s}`, `${w.dataDir}/fz/\x01`, `${w.dataDir}/${'d'.repeat(300)}`, '', '/..', 5]);
        if (r.chance(0.5)) c.ipam.dataDir = dir;
        else c.dataDir = dir;
      }
      return { kind: 'names and dataDir', call, stdin: JSON.stringify(c) };
    }
    if (roll < 88) {
      call.netns = r.pick(bogus);
      return { kind: 'bogus netns', call, stdin: text };
    }
    if (roll < 94) {
      // The host's own netns, with the ifname of a host interface: must never touch it.
      call.command = r.pick(['ADD', 'DEL', 'CHECK']);
      call.netns = r.pick(own);
      call.ifname = r.pick(['eth0', 'eth0p', 'lo', base.bridge]);
      if (r.chance(0.3)) call.containerId = 'warmup';
      if (r.chance(0.25)) call.extraEnv = { CNI_NETNS_OVERRIDE: '1' };
      const c = clone();
      if (call.command === 'CHECK') c.prevResult = { cniVersion: '1.0.0', interfaces: [{ name: call.ifname, sandbox: call.netns }], ips: [{ address: '10.234.9.1/24', interface: 0 }] };
      return { kind: 'own netns + host ifname', call, stdin: JSON.stringify(c) };
    }
    // Ports and prefixes out of range.
    const c = clone();
    if (r.chance(0.5)) {
      c.runtimeConfig = {
        portMappings: Array.from({ length: 1 + r.int(3) }, () => ({
          hostPort: r.pick([-1, 0, 1, 80, 18080 + r.int(100), 65535, 65536, 1e9, 80.5, '80', null]),
          containerPort: r.pick([0, 80, 65536, -5, 'x']),
          protocol: r.pick(['tcp', 'udp', 'sctp', 'TCP', 'icmp', '', 5]),
          ...(r.chance(0.4) && { hostIP: r.pick(['10.234.9.1', '::1', '999.1.1.1', '', '0.0.0.0/0', '127.0.0.1']) }),
        })),
      };
    } else {
      c.ipam.ranges = [[{ subnet: r.pick(['10.234.0.0/33', '10.234.0.0/-1', '10.234.0.0/31', '10.234.0.0/32', '10.234.0.0/0', '10.234.0.0/8', '10.234.0.0/24 ', 'fd00::/129', '10.234.0.0/ 24', '10.234.0.0']), ...(r.chance(0.5) && { rangeStart: r.pick(['10.234.1.1', '10.234.0.0', '10.234.0.255', 'x']) }) }]];
    }
    return { kind: 'ports and prefixes', call, stdin: JSON.stringify(c) };
  }

  it(`${CASES} cases: a CNI result or CNI error every time; host and file system untouched`, async () => {
    const cases: Case[] = [];
    for (let i = 0; cases.length < CASES; i++) {
      const c = generate(rnd, i);
      if (safe(c.stdin)) cases.push(c);
    }
    const added: Case[] = [];
    const problems: string[] = [];
    const t0 = Date.now();
    await pool(PARALLEL, cases.map((c, i) => async () => {
      // Every case runs under strace, which logs each file Pier (or a child) touches.
      const r = await callAsync(w, { ...c.call, via: fileWriteTracer(`${traces}/c${i}`) }, c.stdin, { timeoutMs: 60_000 });
      const k = kinds.get(c.kind) ?? { n: 0, ok: 0, codes: {} };
      kinds.set(c.kind, k);
      k.n++;
      const where = `case ${i} (${c.kind}, ${c.call.command}, cid=${JSON.stringify(c.call.containerId)?.slice(0, 20)}, ifname=${JSON.stringify(c.call.ifname)?.slice(0, 20)}, netns=${JSON.stringify(c.call.netns)?.slice(0, 40)}, stdin=${JSON.stringify(c.stdin.slice(0, 60))})`;
      if (r.status === null) return void problems.push(`${where}: killed by ${r.signal} after ${r.ms} ms`);
      if (/\n\s+at .*:\d+:\d+\)?/.test(r.stdout) || /^\s*(TypeError|RangeError|Error|SyntaxError)\b/m.test(r.stdout)) problems.push(`${where}: stack trace on stdout: ${r.stdout.slice(0, 300)}`);
      if (r.status === 0) {
        k.ok++;
        k.codes.ok = (k.codes.ok ?? 0) + 1;
        if (r.stdout.trim() && (typeof r.json !== 'object' || r.json === null || 'code' in r.json)) problems.push(`${where}: exit 0 with ${r.stdout.slice(0, 200)}`);
        if (c.call.command === 'ADD') {
          if (!r.json?.cniVersion || !(Array.isArray(r.json.ips) || r.json.ip4)) problems.push(`${where}: ADD result without addresses: ${r.stdout.slice(0, 200)}`);
          added.push(c);
        }
        return;
      }
      const e = r.json;
      if (!e || typeof e.code !== 'number' || typeof e.msg !== 'string' || typeof e.cniVersion !== 'string') {
        return void problems.push(`${where}: exit ${r.status} without a CNI error: ${JSON.stringify(r.stdout.slice(0, 300))} stderr ${r.stderr.slice(0, 300)}`);
      }
      k.codes[e.code] = (k.codes[e.code] ?? 0) + 1;
      if (e.code === 999) problems.push(`${where}: internal error (999) is a bug: ${e.msg} ${e.details ?? ''}`);
    }));
    console.log(`# fuzz: ${cases.length} cases in ${Date.now() - t0} ms, ${added.length} ADDs succeeded`);

    // Undo what the successful ADDs made, as a runtime would: DEL with the same input.
    for (const c of added) {
      const d = await callAsync(w, { ...c.call, command: 'DEL' }, c.stdin);
      if (d.status !== 0) problems.push(`DEL of fuzz ADD ${c.call.containerId}/${c.call.ifname}: ${d.stdout}`);
    }
    const gc = await callAsync(w, { command: 'GC', path: `${ROOT}/dist` }, { ...base, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
    assert.equal(gc.status, 0, gc.stdout);
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`);

    const hostAfter = hostSnapshot(w, (n) => n === base.bridge, base.nftTable);
    const names = (x: typeof hostAfter) => x.links.map((l) => `${l.ifname}#${l.ifindex}`).sort();
    assert.deepEqual(names(hostAfter), names(hostBefore), 'the same host links (eth0 neither deleted, renamed nor moved; nothing new)');
    assert.deepEqual(hostAfter, hostBefore, 'host netns links, addresses, routes and rules as before');
    assert.deepEqual(nftElements(w, base.nftTable), [], 'no element left in Pier\'s table');
    assert.deepEqual(JSON.parse(w.exec('ip', ['-j', 'link', 'show', 'master', base.bridge]).stdout || '[]'), [], 'no bridge port left');
    // Every file the cases created, wrote, renamed or removed, by strace's account (so another
    // process on the machine writing its own files changes nothing here). Allowed: the world's
    // data dir (stores and the log), /run/pier (the koffi copy kept between runs, the nft lock
    // and its verified mark) and the network sysctls of the world's namespaces.
    const written = pathsWritten(readdirSync(traces).map((f) => `${traces}/${f}`));
    const allowed = [w.dataDir, '/run/pier', '/proc/sys/net'];
    assert.ok([...written].some((p) => p === w.logFile), `the tracer saw no write to the log: ${[...written].slice(0, 5).join(' ')}`);
    assert.ok([...written].some((p) => p.startsWith(`${w.dataDir}/fz/`)), 'the tracer saw no write to a store');
    const stray = [...written].filter((p) => !allowed.some((a) => p === a || p.startsWith(`${a}/`)) && p !== traces && !p.startsWith(`${traces}/`));
    assert.deepEqual(stray.sort(), [], 'no file touched outside the data dir, the log and /run/pier');
    void run;
  });
});

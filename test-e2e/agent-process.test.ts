// `pier agent` as a process, from the single executable copied alone (no node, no node_modules):
// the agent bundle and koffi come from its assets. Its start-up decisions without an API server:
// bad flags (2) and an unusable kubeconfig (1) end it at once with one clear line; an API
// server that does not answer is retried with a log line while the agent keeps running, and
// SIGTERM ends it with 0. None of it needs the Kubernetes binaries.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cleanup, run, uniquePrefix } from './helpers.ts';
import { seaBlobRange } from '../src/agent/memory.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const p = uniquePrefix();
const cleanup = new Cleanup();
const NS = `${p}-node`;
let dir = '';
let lone = '';

before(() => {
  if (!existsSync(join(root, 'dist/pier'))) run(process.execPath, [join(root, 'scripts/build.mjs')]);
  dir = mkdtempSync(join(tmpdir(), `${p}-agent-`));
  cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  lone = join(dir, 'pier');
  copyFileSync(join(root, 'dist/pier'), lone);
  cleanup.addNetns(NS);
  run('ip', ['netns', 'add', NS]);
  run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
});
after(() => cleanup.runAll());

const agentIn = (args: string[], env: Record<string, string> = {}) =>
  spawnSync('ip', ['netns', 'exec', NS, 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), lone, 'agent', ...args], { encoding: 'utf8', cwd: dir, timeout: 60_000 });

describe('pier agent from the lone executable', () => {
  test('--help lists every flag; bad flags exit 2 with one line', () => {
    const h = agentIn(['--help']);
    assert.equal(h.status, 0, h.stderr);
    for (const f of ['--kubeconfig', '--node-name', '--cni-conf-dir', '--data-dir', '--cluster-cidr', '--metrics-addr', '--conflist-template', '--vxlan-port']) assert.ok(h.stdout.includes(f), f);
    const bad = agentIn(['--cluster-cidr', '10.244.0.1/16']);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, 'pier agent: --cluster-cidr: "10.244.0.1/16" has host bits set (the network is 10.244.0.0/16)\n');
  });

  test('no usable kubeconfig: exit 1 with one JSON error line, nothing touched', () => {
    for (const [args, env, msg] of [
      [['--node-name', 'n1'], {}, /no --kubeconfig, no KUBECONFIG, and not in a pod/],
      [['--node-name', 'n1', '--kubeconfig', join(dir, 'missing.yaml')], {}, /kubeconfig .*missing\.yaml does not exist/],
      [['--node-name', 'n1'], { KUBECONFIG: '/etc/hostname' }, /has no current context with a cluster server|cannot be read/],
    ] as Array<[string[], Record<string, string>, RegExp]>) {
      const r = agentIn(args, env);
      assert.equal(r.status, 1, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      const line = JSON.parse(lines[0]);
      assert.equal(line.level, 'error');
      assert.match(line.msg, msg);
    }
    assert.deepEqual(run('ip', ['-n', NS, '-br', 'link']).trim().split('\n').map((l) => l.split(/\s+/)[0]), ['lo']);
  });

  test('an API server that does not answer: the agent keeps retrying, serves /healthz, writes its state, holds no SEA blob pages; SIGTERM ends it with 0', async () => {
    const kubeconfig = join(dir, 'kubeconfig');
    // A listening port nobody answers TLS on would hang; a closed one refuses at once.
    writeFileSync(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: c',
      'clusters: [{name: k, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: "t"}}]',
      'contexts: [{name: c, context: {cluster: k, user: u}}]',
    ].join('\n'));
    const runDir = join(dir, 'run');
    const child = spawn('ip', ['netns', 'exec', NS, 'env', '-i', lone, 'agent', '--node-name', 'n1', '--kubeconfig', kubeconfig,
      '--run-dir', runDir, '--cni-conf-dir', join(dir, 'net.d'), '--metrics-addr', '127.0.0.1:9478'], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanup.add(() => child.kill('SIGKILL'));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // 'close', not 'exit': the exit can be seen before the last stderr lines are read.
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (!/API call failed; retrying/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.match(stderr, /"msg":"pier agent started"/);
    assert.match(stderr, /API call failed; retrying.*ECONNREFUSED/);
    const state = JSON.parse(readFileSync(join(runDir, 'state.json'), 'utf8'));
    assert.equal(state.api.reachable, false);
    assert.equal(state.ready, false);
    assert.match(state.waiting, /not been reached/);
    const health = spawnSync('ip', ['netns', 'exec', NS, process.execPath, '-e',
      'fetch("http://127.0.0.1:9478/healthz").then(async (r) => console.log(r.status, await r.text()))'], { encoding: 'utf8' });
    assert.match(health.stdout, /^200 ok: api unreachable, not ready\n/);
    assert.ok(!existsSync(join(dir, 'net.d', '10-pier.conflist')), 'no conflist without the API');
    // The netlink socket (koffi from the executable's asset) opened fine, and nothing was made.
    assert.deepEqual(run('ip', ['-n', NS, '-br', 'link']).trim().split('\n').map((l) => l.split(/\s+/)[0]), ['lo']);
    // The SEA blob (startup snapshot, assets) was read at start and is not resident any more:
    // its pages are counted from /proc/PID/pagemap (bit 63: present).
    const [start, end] = seaBlobRange(lone, readFileSync(`/proc/${child.pid}/maps`, 'utf8'))!;
    const pages = Number((end - start) / 4096n);
    const fd = openSync(`/proc/${child.pid}/pagemap`, 'r');
    const entries = Buffer.alloc(pages * 8);
    readSync(fd, entries, 0, entries.length, Number((start / 4096n) * 8n));
    closeSync(fd);
    let resident = 0;
    for (let i = 0; i < pages; i++) if (entries.readBigUInt64LE(i * 8) >> 63n) resident++;
    assert.ok(pages > 1000, `the blob is ${pages} pages`);
    assert.ok(resident < pages / 4, `${resident} of the SEA blob's ${pages} pages resident`);
    // `ip netns exec` execs the program: the child's PID is the agent's.
    process.kill(child.pid!, 'SIGTERM');
    assert.equal(await exited, 0);
    assert.match(stderr, /stopping; routes, conflist and nftables stay in place/);
  });
});

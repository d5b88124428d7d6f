// Runs the built dist/pier exactly as a runtime does (env + stdin), inside a throwaway netns
// that plays the host, so no test ever touches this machine's own interfaces or ruleset.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Cleanup, uniquePrefix } from './helpers.ts';
import { ensureFreshBuild } from '../scripts/build-stamp.mjs';

export const ROOT = resolve(import.meta.dirname, '..');
export const PIER = join(ROOT, 'dist/pier');
export const PIER_IPAM = join(ROOT, 'dist/pier-ipam');
export const REFERENCE_PLUGINS = '/usr/lib/cni';

/**
 * Makes sure dist/pier is built from the working tree as it is now: rebuilds it when it is
 * missing or when anything it was built from changed (scripts/build-stamp.mjs). Every e2e file
 * that runs dist/pier calls this first; `scripts/test.mjs` already did it for a whole run.
 */
export function ensureBuilt(): void {
  ensureFreshBuild(ROOT);
}

export interface CniCall {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
  extraEnv?: Record<string, string>;
  /** The plugin to run; default dist/pier. */
  plugin?: string;
  /** A command the plugin runs under, inside the host netns (a tracer, say). */
  via?: string[];
}

export interface CniReply {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or undefined when empty. */
  json: any;
}

/**
 * One test's world: a host netns (where the bridge, host veths and nft table live), pod netns
 * on demand, a data dir and a log file, all named with a unique prefix and removed by `cleanup`.
 */
export class TestWorld {
  readonly prefix = uniquePrefix();
  readonly host = `${this.prefix}-host`;
  readonly dataDir: string;
  readonly logFile: string;
  readonly cleanup = new Cleanup();
  private pods = 0;

  constructor() {
    this.dataDir = mkdtempSync(join(tmpdir(), `${this.prefix}-data-`));
    this.logFile = join(this.dataDir, 'pier.log');
    this.cleanup.add(() => rmSync(this.dataDir, { recursive: true, force: true }));
    this.cleanup.addNetns(this.host);
    const r = spawnSync('ip', ['netns', 'add', this.host]);
    if (r.status !== 0) throw new Error(`ip netns add ${this.host}: ${r.stderr}`);
    spawnSync('ip', ['-n', this.host, 'link', 'set', 'lo', 'up']);
  }

  /** A fresh pod netns; returns its name (path /run/netns/NAME). */
  addPod(): string {
    const name = `${this.prefix}-p${this.pods++}`;
    this.cleanup.addNetns(name);
    const r = spawnSync('ip', ['netns', 'add', name]);
    if (r.status !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    spawnSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** The environment a runtime would pass, with the log redirected to this world. */
  env(call: CniCall): Record<string, string> {
    const env: Record<string, string> = {
      CNI_COMMAND: call.command,
      CNI_PATH: call.path ?? `${join(ROOT, 'dist')}:${REFERENCE_PLUGINS}`,
      PIER_LOG_FILE: this.logFile,
      PIER_LOG_LEVEL: 'debug',
      ...call.extraEnv,
    };
    if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
    if (call.netns !== undefined) env.CNI_NETNS = call.netns;
    if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
    if (call.args !== undefined) env.CNI_ARGS = call.args;
    return env;
  }

  private argv(call: CniCall): string[] {
    // `ip netns exec HOST env -i K=V... PLUGIN`: the plugin sees only the CNI environment.
    const env = Object.entries(this.env(call)).map(([k, v]) => `${k}=${v}`);
    return ['netns', 'exec', this.host, ...(call.via ?? []), 'env', '-i', ...env, call.plugin ?? PIER];
  }

  /** Runs the plugin synchronously. */
  call(call: CniCall, stdin: unknown): CniReply {
    const input = typeof stdin === 'string' ? stdin : JSON.stringify(stdin);
    const r = spawnSync('ip', this.argv(call), { input, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
  }

  /** Runs the plugin as a child process, for concurrency and kill tests. */
  spawn(call: CniCall, stdin: unknown) {
    const child = spawn('ip', this.argv(call), { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(typeof stdin === 'string' ? stdin : JSON.stringify(stdin));
    return child;
  }

  /** Runs a command in the host netns. */
  exec(cmd: string, args: string[]) {
    return spawnSync('ip', ['netns', 'exec', this.host, cmd, ...args], { encoding: 'utf8' });
  }

  netnsPath(name: string): string {
    return `/run/netns/${name}`;
  }

  /** A network config for this world (bridge, subnet and nft table unique to it). */
  conf(cniVersion: string, o: { subnet?: string; subnet6?: string; extra?: Record<string, unknown>; ipam?: Record<string, unknown> } = {}) {
    const ranges: unknown[] = [[{ subnet: o.subnet ?? '10.213.0.0/24' }]];
    if (o.subnet6) ranges.push([{ subnet: o.subnet6 }]);
    return {
      cniVersion,
      name: `${this.prefix}net`,
      type: 'pier',
      bridge: `${this.prefix}br`,
      isGateway: true,
      nftTable: `pier_test_${this.prefix}`,
      ipam: { type: 'pier-ipam', ranges, routes: [{ dst: '0.0.0.0/0' }], dataDir: this.dataDir, ...o.ipam },
      ...o.extra,
    };
  }
}

/** The worlds one test file makes, so its after() hook can remove them all. */
export class Worlds {
  private readonly list: TestWorld[] = [];

  make(): TestWorld {
    const w = new TestWorld();
    this.list.push(w);
    return w;
  }

  cleanupAll(): void {
    for (const w of this.list) w.cleanup.runAll();
  }
}

/** Asserts the call succeeded; returns its JSON reply. */
export function ok(r: CniReply, what: string): any {
  assert.equal(r.status, 0, `${what} failed: ${r.stdout} ${r.stderr}`);
  return r.json;
}

/** Asserts the call failed with CNI error `code`; returns its JSON reply. */
export function fails(r: CniReply, code: number, what: string): any {
  assert.notEqual(r.status, 0, `${what} should fail but printed ${r.stdout}`);
  assert.equal(r.json?.code, code, `${what}: expected code ${code}, got ${r.stdout}`);
  return r.json;
}

// Whether this machine had Pier's default data dir when the test file was loaded (each test file
// runs in a process of its own), so that removeFromDefaultStore leaves the machine as it was.
const hadDefaultStore = existsSync('/var/lib/pier');

/**
 * Removes a network's store from this machine's default data dir (where a Pier that ignored the
 * config's data dir would have put it), and the dirs too if they were not there before.
 */
export function removeFromDefaultStore(network: string): void {
  rmSync(join('/var/lib/pier/networks', network), { recursive: true, force: true });
  if (!hadDefaultStore) for (const dir of ['/var/lib/pier/networks', '/var/lib/pier']) spawnSync('rmdir', [dir]);
}

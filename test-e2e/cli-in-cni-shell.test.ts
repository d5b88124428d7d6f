// The CLI run from a shell that exports CNI_* variables (the cnitool instructions have users
// export CNI_PATH and NETCONFPATH): a subcommand means the CLI; no subcommand means a runtime call.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cleanup, uniquePrefix } from './helpers.ts';
import { PIER, ensureBuilt } from './cni-harness.ts';

const p = uniquePrefix();
const HOST = `${p}-host`;
const cleanup = new Cleanup();
const dir = mkdtempSync(join(tmpdir(), `${p}-clienv-`));
cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
cleanup.addNetns(HOST);
after(() => cleanup.runAll());

/** Runs dist/pier inside the throwaway host netns with exactly `env` (plus PATH). */
function pier(env: Record<string, string>, args: string[], input = '') {
  const vars = Object.entries({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', PIER_LOG_FILE: join(dir, 'pier.log'), ...env }).map(([k, v]) => `${k}=${v}`);
  return spawnSync('ip', ['netns', 'exec', HOST, 'env', '-i', ...vars, PIER, ...args], { input, encoding: 'utf8' });
}

const cnitoolShell = { CNI_PATH: '/opt/cni/bin', NETCONFPATH: '/etc/cni/net.d', CNI_IFNAME: 'eth0' };

test('setup: a throwaway host netns', () => {
  ensureBuilt();
  assert.equal(spawnSync('ip', ['netns', 'add', HOST]).status, 0);
});

test('`pier ls` in a shell exporting CNI_PATH lists', () => {
  const r = pier(cnitoolShell, ['ls', '--json', '--data-dir', join(dir, 'data')]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), []);
});

test('`pier --version` with CNI_COMMAND exported prints the version', () => {
  const r = pier({ ...cnitoolShell, CNI_COMMAND: 'ADD' }, ['--version']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^pier \d+\.\d+\.\d+/);
});

test('no subcommand, CNI_PATH but no CNI_COMMAND: still a CNI error (code 4) on stdout', () => {
  const r = pier(cnitoolShell, [], '{}');
  assert.notEqual(r.status, 0);
  const err = JSON.parse(r.stdout);
  assert.equal(err.code, 4);
  assert.match(err.msg, /CNI_COMMAND/);
});

// STATUS with a delegated IPAM plugin that does not speak CNI 1.1 (Debian's host-local speaks up
// to 1.0.0 and has no STATUS): Pier asks it only what it can answer, so the network is not
// reported unready for its IPAM's age. Run by dist/pier in a TestWorld's host netns.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, REFERENCE_PLUGINS, TestWorld, ensureBuilt, Worlds, ok } from './cni-harness.ts';

const worlds = new Worlds();
before(() => {
  ensureBuilt();
  assert.ok(existsSync(join(REFERENCE_PLUGINS, 'host-local')), 'host-local is installed (scripts/install-deps.sh)');
});
after(() => worlds.cleanupAll());

test('STATUS and pier status answer ready with a delegated host-local', () => {
  const w: TestWorld = worlds.make();
  const conf = w.conf('1.1.0', { ipam: { type: 'host-local', dataDir: join(w.dataDir, 'host-local') }, extra: { dataDir: w.dataDir } });
  ok(w.call({ command: 'STATUS' }, conf), 'STATUS');
  const file = join(w.dataDir, 'net.conf');
  writeFileSync(file, JSON.stringify({ ...conf, cniVersion: '1.0.0' }));
  const r = spawnSync('ip', ['netns', 'exec', w.host, PIER, 'status', '-c', file], { encoding: 'utf8', env: { ...process.env, PIER_LOG_FILE: w.logFile } });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /ready/);
});

// The quick start and the install script need Node.js >= 20.16 to build Pier, and Debian 12
// ships Node 18: with an older `node` (or none) they stop before doing anything, saying what is
// needed. They run from a copy of the scripts (no dist/, no node_modules, no install-deps.sh)
// with a PATH holding only bash, dirname and a stand-in `node`: whatever they get wrong, they
// cannot install or build anything on this machine.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cni-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'pier-node-version-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const repo = join(dir, 'repo');
mkdirSync(join(repo, 'scripts'), { recursive: true });
for (const f of ['quickstart.sh', 'install.sh', 'check-node.sh']) {
  if (existsSync(join(ROOT, 'scripts', f))) copyFileSync(join(ROOT, 'scripts', f), join(repo, 'scripts', f));
}

/** A bin dir with bash, dirname and a `node` that reports `version` (none when undefined). */
function sandboxPath(version: string | undefined): string {
  const bin = join(dir, `bin-${version ?? 'none'}`);
  if (!existsSync(bin)) {
    mkdirSync(bin);
    for (const tool of ['bash', 'dirname']) symlinkSync(spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), join(bin, tool));
    if (version) {
      writeFileSync(join(bin, 'node'), `#!${join(bin, 'bash')}\necho ${version}\n`);
      chmodSync(join(bin, 'node'), 0o755);
    }
  }
  return bin;
}

function run(script: string, version: string | undefined, args: string[] = []) {
  return spawnSync(join(sandboxPath(version), 'bash'), [join(repo, 'scripts', script), ...args], {
    encoding: 'utf8',
    env: { PATH: sandboxPath(version) },
    timeout: 30_000,
  });
}

test('quickstart.sh stops at once with an old node or none, saying what it needs', () => {
  for (const version of ['v18.19.0', 'v20.15.1', undefined]) {
    const r = run('quickstart.sh', version);
    assert.notEqual(r.status, 0, `${version}: ${r.stdout}`);
    assert.match(r.stderr, /Node\.js >= 20\.16/, `${version}: ${r.stderr}`);
    assert.match(r.stderr, /Debian 12/);
    if (version) assert.ok(r.stderr.includes(version), r.stderr);
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /installing|No such file/, 'it stopped before the first step');
  }
});

test('install.sh that has to build says the same, and installs nothing', () => {
  const r = run('install.sh', 'v18.19.0', ['--prefix', join(dir, 'root')]);
  assert.notEqual(r.status, 0, r.stdout);
  assert.match(r.stderr, /Node\.js >= 20\.16/);
  assert.equal(existsSync(join(dir, 'root')), false);
});

test('check-node.sh lets 20.16 and later through', () => {
  for (const v of ['v20.16.0', 'v20.20.2', 'v22.3.0', 'v24.0.0']) assert.equal(run('check-node.sh', v).status, 0, v);
  for (const v of ['v18.19.0', 'v20.15.1', 'v16.20.2', 'garbage']) assert.notEqual(run('check-node.sh', v).status, 0, v);
});

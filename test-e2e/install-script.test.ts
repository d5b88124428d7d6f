// scripts/install.sh as an upgrade uses it: it builds when dist/pier is missing or older than
// the sources (after a `git pull`), installs atomically, and a second run changes nothing. It
// runs from a copy of the scripts with stand-ins for `npm` (records the call, writes a new
// dist/pier) and `node`, and installs under a temp --prefix: nothing reaches this machine.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cni-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'pier-install-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const repo = join(dir, 'repo');
const prefix = join(dir, 'root');
const stubs = join(dir, 'stubs');
const npmCalls = join(dir, 'npm-calls');
for (const d of [join(repo, 'scripts'), join(repo, 'src'), join(repo, 'dist'), join(repo, 'node_modules'), stubs]) mkdirSync(d, { recursive: true });
for (const f of ['install.sh', 'check-node.sh']) copyFileSync(join(ROOT, 'scripts', f), join(repo, 'scripts', f));
writeFileSync(join(repo, 'package.json'), '{}');
writeFileSync(join(repo, 'src', 'main.ts'), '// the sources');
const stub = (name: string, body: string) => {
  writeFileSync(join(stubs, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(stubs, name), 0o755);
};
stub('node', 'echo v20.20.0');
// `npm run build` makes a new dist/pier, as the real build does.
stub('npm', `echo "$*" >> ${npmCalls}\n[ "$1" = run ] && printf 'built\\n' > dist/pier && chmod 755 dist/pier\nexit 0`);

/** Sets a file's mtime `secondsAgo` in the past. */
const age = (file: string, secondsAgo: number) => {
  const t = Date.now() / 1000 - secondsAgo;
  utimesSync(file, t, t);
};

function install(...args: string[]) {
  return spawnSync('bash', [join(repo, 'scripts/install.sh'), '--prefix', prefix, ...args], {
    encoding: 'utf8',
    env: { PATH: `${stubs}:/usr/sbin:/usr/bin:/sbin:/bin` },
  });
}

const installed = () => readFileSync(join(prefix, 'opt/cni/bin/pier'), 'utf8');
const builds = () => (existsSync(npmCalls) ? readFileSync(npmCalls, 'utf8').split('\n').filter((l) => l.startsWith('run')).length : 0);

test('install.sh rebuilds a dist/pier older than the sources, and only then', () => {
  writeFileSync(join(repo, 'dist/pier'), 'old\n');
  chmodSync(join(repo, 'dist/pier'), 0o755);
  for (const f of ['src/main.ts', 'package.json']) age(join(repo, f), 60);

  // dist/pier newer than every source: installed as it is.
  let r = install();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(builds(), 0);
  assert.equal(installed(), 'old\n');

  // A source changed since (a git pull): built first, and the new one installed.
  age(join(repo, 'dist/pier'), 120);
  r = install();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(builds(), 1, 'npm run build ran');
  assert.equal(installed(), 'built\n');
  assert.ok(readFileSync(join(prefix, 'opt/cni/bin/pier-ipam'), 'utf8') === 'built\n', 'pier-ipam is the same file');

  // Nothing changed: nothing built, nothing installed again.
  r = install();
  assert.equal(r.status, 0, r.stderr);
  assert.equal(builds(), 1);
  assert.match(r.stdout, /unchanged .*opt\/cni\/bin\/pier/);
  assert.doesNotMatch(r.stdout, /^installed/m);
});

test('install.sh --no-build installs a stale dist/pier as it is, saying so', () => {
  writeFileSync(join(repo, 'dist/pier'), 'stale\n');
  age(join(repo, 'dist/pier'), 300);
  const before = builds();
  const r = install('--no-build');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(builds(), before);
  assert.match(r.stderr, /older than the sources/);
  assert.equal(installed(), 'stale\n');
});

// The single executable: dist/pier runs alone, without node or node_modules, and dist/pier-ipam
// is the same program. Builds it first if it is missing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PIER_VERSION } from '../src/version.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const pier = join(root, 'dist/pier');
const pierIpam = join(root, 'dist/pier-ipam');
let scratch = '';

before(() => {
  if (!existsSync(pier)) execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
  scratch = mkdtempSync(join(tmpdir(), 'pier-build-test-'));
});

after(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('dist/pier is an ELF executable', () => {
  const head = Buffer.alloc(4);
  const fd = openSync(pier, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  assert.deepEqual([...head], [0x7f, 0x45, 0x4c, 0x46]);
  assert.ok(statSync(pier).mode & 0o111, 'dist/pier is not executable');
});

test('dist/pier-ipam is the same file as dist/pier', () => {
  // statSync follows symlinks, so this holds for a hard link and a symlink alike.
  const a = statSync(pier);
  const b = statSync(pierIpam);
  assert.equal(b.dev, a.dev);
  assert.equal(b.ino, a.ino);
});

test('dist/pier runs alone, with an empty environment', () => {
  const lone = join(scratch, 'pier');
  copyFileSync(pier, lone);
  // env: {} is `env -i`: no PATH, so no node to fall back on; the cwd has no node_modules.
  const out = execFileSync(lone, ['--version'], { cwd: scratch, env: {}, encoding: 'utf8' });
  assert.equal(out, `pier ${PIER_VERSION}\n`);
});

test('PIER_TRACE=1: phase timings on stderr, stdout unchanged (--version and a CNI VERSION call)', () => {
  const v = spawnSync(pier, ['--version'], { env: { PIER_TRACE: '1' }, encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.equal(v.stdout, `pier ${PIER_VERSION}\n`);
  const lines = v.stderr.trimEnd().split('\n');
  assert.match(lines[0], /^pier trace +[\d.]+ ms {2}\(\+[\d.]+\) {2}main$/);
  assert.match(lines.at(-1) ?? '', /^pier trace +[\d.]+ ms {2}\(\+[\d.]+\) {2}done$/);
  const times = lines.map((l) => Number(/([\d.]+) ms/.exec(l)?.[1]));
  assert.deepEqual([...times].sort((x, y) => x - y), times, 'marks in time order');

  const c = spawnSync(pier, [], { env: { CNI_COMMAND: 'VERSION', PIER_TRACE: '1' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
  assert.equal(c.status, 0);
  assert.equal(JSON.parse(c.stdout).cniVersion, '1.0.0');
  assert.match(c.stderr, /pier trace .* stdin read\n/);
});

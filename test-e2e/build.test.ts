// The single executable: dist/pier runs alone, without node or node_modules, and dist/pier-ipam
// is the same program. It is built from the working tree as it is now (the build stamp).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PIER_VERSION } from '../src/version.ts';
import { ensureBuilt, PIER as pier, PIER_IPAM as pierIpam, ROOT } from './cni-harness.ts';
import { STAMP, staleReason, writeStamp } from '../scripts/build-stamp.mjs';

let scratch = '';

before(() => {
  ensureBuilt();
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

test('the build stamp lists what dist/pier was made from, and it matches the working tree', () => {
  assert.equal(staleReason(ROOT), null);
  const files = Object.keys(JSON.parse(readFileSync(join(ROOT, STAMP), 'utf8')).files);
  // The entry point, the CNI commands, the libc layer and a dependency: what esbuild read.
  for (const f of ['src/sea-entry.ts', 'src/cni/commands/add.ts', 'src/netlink/libc.ts', 'scripts/build.mjs']) {
    assert.ok(files.includes(f), `${f} is not in the stamp`);
  }
  assert.ok(files.some((f) => f.startsWith('node_modules/zod/')), 'zod is not in the stamp');
  assert.ok(files.some((f) => f.endsWith('/koffi.node')), 'the embedded koffi.node is not in the stamp');
  assert.ok(!files.some((f) => f.endsWith('.test.ts')), 'tests are not inputs');
});

test('the build stamp calls dist/pier stale when a source changes, vanishes, or the executable is replaced', () => {
  // A tree of its own: one source, one "executable".
  const root = join(scratch, 'tree');
  mkdirSync(join(root, 'src'), { recursive: true });
  mkdirSync(join(root, 'dist'));
  mkdirSync(join(root, 'build'));
  const src = join(root, 'src/a.ts');
  const exe = join(root, 'dist/pier');
  writeFileSync(src, 'export const a = 1;\n');
  writeFileSync(exe, 'binary');
  writeStamp(root, ['src/a.ts'], exe);
  assert.equal(staleReason(root), null);

  writeFileSync(src, 'export const a = 2;\n');
  assert.equal(staleReason(root), 'src/a.ts changed since the build');
  writeFileSync(src, 'export const a = 1;\n');
  assert.equal(staleReason(root), null, 'the same content again is current');

  rmSync(src);
  assert.equal(staleReason(root), 'src/a.ts was deleted since the build');
  writeFileSync(src, 'export const a = 1;\n');

  // Another file put in place of dist/pier (an older build copied back, say).
  writeFileSync(`${exe}.new`, 'binary');
  renameSync(`${exe}.new`, exe);
  assert.equal(staleReason(root), 'dist/pier is not the file the last build made');
  rmSync(exe);
  assert.equal(staleReason(root), 'dist/pier is missing');
  rmSync(join(root, STAMP));
  assert.match(staleReason(root) ?? '', /^no build stamp/);
});

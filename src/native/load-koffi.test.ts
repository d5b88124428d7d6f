import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { keptCopy } from './load-koffi.ts';

const base = mkdtempSync(join(tmpdir(), 'pier-kept-test-'));
after(() => rmSync(base, { recursive: true, force: true }));

const bytes = Buffer.from('not really a shared object, but bytes all the same');
const sum = createHash('sha256').update(bytes).digest('hex');

test('keptCopy writes a read-only copy named by the hash once, then reuses it', () => {
  const dir = join(base, 'a', 'native');
  const first = keptCopy(bytes, sum, dir);
  assert.equal(first, join(dir, `koffi-${sum.slice(0, 32)}.node`));
  assert.deepEqual(readFileSync(first), bytes);
  assert.equal(statSync(first).mode & 0o777, 0o500);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const ino = statSync(first).ino;
  assert.equal(keptCopy(bytes, sum, dir), first);
  assert.equal(statSync(first).ino, ino, 'not rewritten');
});

test('keptCopy refuses a directory others can write to, and a file of another size', () => {
  const dir = join(base, 'b', 'native');
  const file = keptCopy(bytes, sum, dir);
  assert.ok(file);
  chmodSync(dir, 0o777);
  assert.equal(keptCopy(bytes, sum, dir), undefined, 'world-writable dir');
  chmodSync(dir, 0o700);
  chmodSync(join(base, 'b'), 0o777);
  assert.equal(keptCopy(bytes, sum, dir), undefined, 'world-writable parent');
  chmodSync(join(base, 'b'), 0o700);
  chmodSync(file, 0o700);
  writeFileSync(file, 'short');
  chmodSync(file, 0o500);
  assert.equal(keptCopy(bytes, sum, dir), undefined, 'wrong size');
  chmodSync(file, 0o700);
  writeFileSync(file, bytes);
  chmodSync(file, 0o522);
  assert.equal(keptCopy(bytes, sum, dir), undefined, 'writable by others');
});

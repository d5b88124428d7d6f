import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileInPlace } from './fs-atomic.ts';

const dir = fs.mkdtempSync(join(tmpdir(), 'pier-fs-atomic-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('writeFileInPlace: creates, overwrites with longer and shorter content, leaves nothing behind, mode 0600', () => {
  const path = join(dir, 'last_reserved_ip.0');
  writeFileInPlace(fs, path, '10.1.0.100');
  assert.equal(fs.readFileSync(path, 'utf8'), '10.1.0.100');
  assert.equal(fs.statSync(path).mode & 0o777, 0o600);
  const ino = fs.statSync(path).ino;
  writeFileInPlace(fs, path, '10.1.0.9');
  assert.equal(fs.readFileSync(path, 'utf8'), '10.1.0.9', 'the old tail is cut');
  writeFileInPlace(fs, path, 'fd00:1::1234');
  assert.equal(fs.readFileSync(path, 'utf8'), 'fd00:1::1234');
  assert.equal(fs.statSync(path).ino, ino, 'written in place');
  assert.deepEqual(fs.readdirSync(dir), ['last_reserved_ip.0']);
});

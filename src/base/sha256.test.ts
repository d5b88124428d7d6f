import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { sha256Hex } from './sha256.ts';

const ref = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

test('sha256Hex: the FIPS 180-4 examples', () => {
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
});

test('sha256Hex matches node:crypto on every length 0-300 and on multi-byte text', () => {
  for (let n = 0; n <= 300; n++) {
    const s = 'x'.repeat(n);
    assert.equal(sha256Hex(s), ref(s), `length ${n}`);
  }
  for (const s of ['héllo', '日本語のテキスト', '😀'.repeat(40), 'pier-default/10.123.0.0/24,fd00:123::/64', JSON.stringify({ a: [1, 2, 'ü'] }).repeat(50)]) {
    assert.equal(sha256Hex(s), ref(s), s.slice(0, 20));
  }
});

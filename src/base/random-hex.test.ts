import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomHex } from './random-hex.ts';

test('randomHex: n lower-case hex characters, different from call to call', () => {
  for (const n of [1, 8, 13, 20]) assert.match(randomHex(n), new RegExp(`^[0-9a-f]{${n}}$`));
  const seen = new Set(Array.from({ length: 1000 }, () => randomHex(8)));
  assert.ok(seen.size >= 999, `${seen.size} distinct of 1000`);
});

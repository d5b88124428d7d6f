import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from './iso-time.ts';

test('isoTime matches Date#toISOString at edges and on 100,000 seeded times from 0000 to 9999', () => {
  const edges = [0, 1, 999, 1000, 86399999, 86400000, 951782400000 /* 2000-02-29 */, 951868800000, 4107542400000 /* 2100-03-01 */,
    -1, -86400000, -62167219200000 /* 0000-01-01 */, 253402300799999 /* 9999-12-31T23:59:59.999 */, Date.UTC(2026, 10, 29, 5, 20, 37, 123)];
  for (const ms of edges) assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  let seed = 12345;
  const min = -62167219200000;
  const span = 253402300799999 - min;
  for (let i = 0; i < 100_000; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const ms = min + Math.floor((seed / 2 ** 32) * span);
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
});

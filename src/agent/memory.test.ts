import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reclaimMemory } from './memory.ts';

test('reclaimMemory collects dead buffers and gives the pages of malloc holes back', () => {
  // 64 MB of 16 KB buffers (malloc'd, below the mmap threshold, so in the heap's arena), every
  // 16th kept alive: the dead ones become holes between live chunks, which free() keeps and
  // only malloc_trim returns. Without the collection the buffers are not even freed.
  let bufs = Array.from({ length: 4096 }, () => Buffer.allocUnsafeSlow(16 * 1024).fill(1));
  const pins = bufs.filter((_, i) => i % 16 === 0);
  bufs = [];
  const { rssMbBefore, rssMbAfter } = reclaimMemory();
  assert.equal(pins.length, 256);
  assert.ok(rssMbBefore - rssMbAfter > 30, `RSS ${rssMbBefore} -> ${rssMbAfter} MB`);
});

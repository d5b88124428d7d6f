import { test } from 'node:test';
import assert from 'node:assert/strict';
import { enableTrace, mark, traceReport } from './trace.ts';

test('trace: nothing recorded until enabled, then one line per mark in order', () => {
  mark('before');
  assert.equal(traceReport(), '');
  enableTrace();
  mark('one');
  mark('two');
  const lines = traceReport().trimEnd().split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^pier trace +[\d.]+ ms {2}\(\+[\d.]+\) {2}one$/);
  assert.match(lines[1], /^pier trace +[\d.]+ ms {2}\(\+[\d.]+\) {2}two$/);
});

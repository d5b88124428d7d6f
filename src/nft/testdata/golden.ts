// Compares a builder's output with a golden JSON file in this directory; UPDATE_GOLDEN=1
// rewrites the file instead (review the diff: the e2e tests apply the same output to nft).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function assertGolden(name: string, actual: unknown): void {
  const file = fileURLToPath(new URL(`./${name}`, import.meta.url));
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, text);
  assert.deepStrictEqual(actual, JSON.parse(readFileSync(file, 'utf8')));
}

export function readFixture(name: string): unknown {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`./${name}`, import.meta.url)), 'utf8'));
}

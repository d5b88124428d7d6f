// Compares a builder's output with a golden JSON file in this directory. A golden is reviewed
// by a person, so the test never writes one on its own: a missing golden fails. UPDATE_GOLDEN=1
// rewrites the file from the builder AND fails, so a run with it can never pass silently (in CI
// or anywhere): review the diff, run test-e2e/nft-golden-kernel.test.ts, which checks the
// goldens in a real kernel against the hand-written rulesets in kernel/, then run again.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function assertGolden(name: string, actual: unknown): void {
  const file = fileURLToPath(new URL(`./${name}`, import.meta.url));
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(file, `${JSON.stringify(actual, null, 2)}\n`);
    assert.fail(`UPDATE_GOLDEN=1 rewrote ${name} from the builder: review the diff, check it in a kernel (nft-golden-kernel e2e test), and run again without UPDATE_GOLDEN`);
  }
  assert.ok(existsSync(file), `golden ${name} is missing: goldens are reviewed, never written by the test (UPDATE_GOLDEN=1 writes one, and fails)`);
  assert.deepStrictEqual(actual, JSON.parse(readFileSync(file, 'utf8')));
}

export function readFixture(name: string): unknown {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`./${name}`, import.meta.url)), 'utf8'));
}

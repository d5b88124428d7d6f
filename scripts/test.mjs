#!/usr/bin/env node
// Runs the test suites with node:test: unit tests (src/**/*.test.ts and scripts/*.test.ts, no root
// needed) and the e2e tests (test-e2e/*.test.ts, root and a real kernel). TypeScript is loaded through tsx.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureFreshBuild } from './build-stamp.mjs';

function find(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const unit = !args.includes('--e2e');
const e2e = !args.includes('--unit');
// Unit tests live beside their code: in src/, and in scripts/ for the build's own pure parts.
let files = [...(unit ? [...find('src'), ...find('scripts')] : []), ...(e2e ? find('test-e2e') : [])];
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (!files.length) {
  console.error('no test files matched');
  process.exit(1);
}
// The e2e tests run dist/pier: it must be what the working tree builds, never an older one.
// After `npm run build` (as in .ci/run) this only checks the build stamp.
if (files.some((f) => f.startsWith('test-e2e'))) {
  try {
    ensureFreshBuild(fileURLToPath(new URL('..', import.meta.url)));
  } catch (err) {
    console.error(String(err));
    process.exit(1);
  }
}
// e2e tests share one kernel; run files one at a time so they do not fight over locks and CPU.
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(r.status ?? 1);

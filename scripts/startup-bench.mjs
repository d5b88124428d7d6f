#!/usr/bin/env node
// Compares the start-up time of `dist/pier --version` with `node -e 0`: interleaved runs, medians.
// Usage: node scripts/startup-bench.mjs [executable=dist/pier] [runs=25]
import { spawnSync } from 'node:child_process';

const executable = process.argv[2] ?? 'dist/pier';
const runs = Number(process.argv[3] ?? 25);

function timeMs(file, args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
  return ms;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// One warm-up each, so the first measured run does not pay for a cold page cache.
timeMs(executable, ['--version']);
timeMs(process.execPath, ['-e', '0']);
const pier = [];
const node = [];
for (let i = 0; i < runs; i++) {
  pier.push(timeMs(executable, ['--version']));
  node.push(timeMs(process.execPath, ['-e', '0']));
}
const p = median(pier);
const n = median(node);
console.log(`${executable} --version: median ${p.toFixed(1)} ms over ${runs} runs`);
console.log(`node -e 0: median ${n.toFixed(1)} ms over ${runs} runs`);
console.log(`ratio: ${(p / n).toFixed(2)}`);

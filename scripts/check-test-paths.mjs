#!/usr/bin/env node
// Fails when a test, a test helper or a script names a path outside the repository: a relative
// path literal ('../x', new URL('../x', import.meta.url), resolve(ROOT, '../x')) that climbs out
// of the repository from its own file or from the repository root, or an absolute path into the
// folders beside the clone. A plain `git clone` has nothing beside it, so such a test fails there
// and nowhere else. Run by .ci/run before the tests.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const scanned = ['src', 'test-e2e', 'scripts', 'bench', '.ci'];
const exts = /\.(ts|mjs|cjs|js|sh)$|^run$/;

/** Every file under dir (skipping node_modules and build output) whose name is code. */
function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'results') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (exts.test(name)) out.push(p);
  }
  return out;
}

const inside = (p) => p === root || p.startsWith(root + sep);
const problems = [];
const self = fileURLToPath(import.meta.url);
for (const file of scanned.flatMap((d) => walk(join(root, d)))) {
  if (file === self) continue;
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    // Hostile inputs handed to Pier (a container ID of '../../etc/x') are not paths a test reads.
    if (line.includes('check-test-paths: hostile input')) return;
    const where = `${relative(root, file)}:${i + 1}`;
    // A relative literal that climbs: resolve it from the file's folder and from the root; if
    // both land outside the repository, nothing in a clone can satisfy it.
    for (const m of line.matchAll(/['"`]((?:\.\.\/)+[^'"`$]*)['"`]/g)) {
      const lit = m[1];
      if (!inside(resolve(dirname(file), lit)) && !inside(resolve(root, lit))) problems.push(`${where}: ${lit}`);
    }
    // The folders a workstation keeps beside the clone.
    for (const m of line.matchAll(/\/work\/(?:shared|\.library)[^'"`\s]*|\bshared\/fixtures\b/g)) problems.push(`${where}: ${m[0]}`);
  });
}
if (problems.length) {
  console.error(`check-test-paths: these name paths outside the repository (a clone has nothing beside it):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('check-test-paths: no test or script names a path outside the repository');

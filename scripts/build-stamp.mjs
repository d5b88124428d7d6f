// What dist/pier was built from, so the e2e tests never run a stale executable. The build
// records every file esbuild read (from its metafile), the koffi module it embedded and the build
// scripts, each with its sha256, and the identity of the Node binary it copied and of the
// dist/pier it made.
// `staleReason` compares all of that with the working tree: any difference (an edited or
// deleted source, another Node, a dist/pier replaced by hand) makes the build stale.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** The stamp lives beside the bundle, in the build directory (not shipped). */
export const STAMP = 'build/dist-pier.stamp.json';

const sha256 = (file) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The identity of a file that changes whenever it is replaced or rewritten. */
function identity(file) {
  const st = statSync(file);
  return { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

/**
 * Writes the stamp for the dist/pier just built. `inputs` are paths (absolute or relative to
 * root) of everything the executable was made from.
 */
export function writeStamp(root, inputs, executable) {
  const files = {};
  for (const f of [...new Set(inputs.map((p) => relative(root, resolve(root, p))))].sort()) files[f] = sha256(join(root, f));
  const stamp = { node: process.version, nodeBinary: { path: process.execPath, ...identity(process.execPath) }, executable: relative(root, executable), built: identity(executable), files };
  const path = join(root, STAMP);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(stamp, null, 1)}\n`);
  renameSync(tmp, path);
}

/** Why dist/pier does not match the working tree, or null when it does. */
export function staleReason(root) {
  const path = join(root, STAMP);
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return `no build stamp (${STAMP}): dist/pier was never built by scripts/build.mjs here`;
  }
  const exe = join(root, stamp.executable ?? 'dist/pier');
  if (!existsSync(exe)) return `${stamp.executable} is missing`;
  const now = identity(exe);
  if (now.ino !== stamp.built?.ino || now.size !== stamp.built?.size || now.mtimeMs !== stamp.built?.mtimeMs) {
    return `${stamp.executable} is not the file the last build made`;
  }
  if (stamp.node !== process.version) return `built with Node ${stamp.node}, this is ${process.version}`;
  // The executable is a copy of the Node binary: another binary of the same version counts too.
  const node = existsSync(stamp.nodeBinary?.path ?? '') ? identity(stamp.nodeBinary.path) : undefined;
  if (stamp.nodeBinary?.path !== process.execPath || node?.ino !== stamp.nodeBinary.ino || node?.size !== stamp.nodeBinary.size || node?.mtimeMs !== stamp.nodeBinary.mtimeMs) {
    return `built from the Node binary ${stamp.nodeBinary?.path}, which is not this one (${process.execPath}) or changed`;
  }
  if (!stamp.files || !Object.keys(stamp.files).length) return 'the build stamp lists no inputs';
  for (const [f, sum] of Object.entries(stamp.files)) {
    const p = join(root, f);
    if (!existsSync(p)) return `${f} was deleted since the build`;
    if (sha256(p) !== sum) return `${f} changed since the build`;
  }
  return null;
}

/**
 * Builds dist/pier when it is missing or stale (prints why), and fails when it is still stale
 * afterwards. Quiet and cheap (hashes ~200 files) when the build is current.
 */
export function ensureFreshBuild(root) {
  const why = staleReason(root);
  if (!why) return;
  console.error(`# rebuilding dist/pier: ${why}`);
  const r = spawnSync(process.execPath, [join(root, 'scripts/build.mjs')], { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status})`);
  const still = staleReason(root);
  if (still) throw new Error(`dist/pier is still stale after a build: ${still}`);
}

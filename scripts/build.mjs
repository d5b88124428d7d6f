#!/usr/bin/env node
// Builds build/pier.cjs (esbuild bundle) and, unless --dev, the single executable dist/pier.
//
// The executable is Node's own binary with a SEA blob injected: the bundle as a V8 startup
// snapshot (evaluated here, at build time; see src/sea-entry.ts) plus koffi.node as an asset,
// which src/native/load-koffi.ts loads at first use because native addons cannot be snapshotted.
// dist/pier-ipam is a hard link to the same file; main() picks its mode from the invoked name.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, chmodSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { writeStamp } from './build-stamp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const distDir = join(root, 'dist');
const bundle = join(buildDir, 'pier.cjs');
// The agent's own bundle (src/agent/bundle-entry.ts), a SEA asset evaluated only by `pier agent`.
const agentBundle = join(buildDir, 'pier-agent.cjs');
const seaConfig = join(buildDir, 'sea-config.json');
const seaBlob = join(buildDir, 'sea-prep.blob');
const executable = join(distDir, 'pier');
const ipamLink = join(distDir, 'pier-ipam');
// The fuse string Node's binary carries to say "a SEA blob is injected"; see Node's SEA docs.
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
// Must match AGENT_ASSET in src/cli/agent-launch.ts.
const AGENT_ASSET = 'pier-agent.cjs';
// Must match KOFFI_ASSET and KOFFI_SHA256_ASSET in src/native/load-koffi.ts.
const KOFFI_ASSET = 'koffi.node';
const KOFFI_SHA256_ASSET = 'koffi.node.sha256';
const koffiSha256 = join(buildDir, KOFFI_SHA256_ASSET);

// The single executable needs process.getBuiltinModule (Node 20.16); Debian 12 ships 18.
const [nodeMajor, nodeMinor] = process.versions.node.split('.').map(Number);
if (nodeMajor < 20 || (nodeMajor === 20 && nodeMinor < 16)) {
  console.error(`build.mjs: Pier needs Node.js >= 20.16 to build; this is ${process.version} (scripts/check-node.sh says more)`);
  process.exit(1);
}

const dev = process.argv.includes('--dev');

// zod's namespace export carries all of its ~40 locales (`z.locales`), so tree-shaking cannot
// drop them; Pier's errors are English only. Resolving zod's locale index to English alone cuts
// the bundle by ~360 KB and the startup snapshot's heap by ~1 MB (less to deserialise per run).
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /locales\/index\.c?js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales-en', namespace: 'pier-shim' } : undefined,
    );
    b.onLoad({ filter: /^zod-locales-en$/, namespace: 'pier-shim' }, () => ({
      contents: "export { default as en } from 'zod/v4/locales/en.js';",
      resolveDir: root,
      loader: 'js',
    }));
  },
};

// The agent's bundle: node-fetch 2 (the Kubernetes client's HTTP) requires whatwg-url only as a
// fallback for a Node without a global URL (`Url.URL || whatwgUrl.URL`), which Node 20 is not;
// but requiring it evaluates tr46's 250 KB Unicode mapping table, a nested array literal that
// kept ~2.7 MB of the agent's heap alive (measured in plain node: the client's heap 7.25 ->
// 4.56 MB). Resolve it to Node's own URL.
const nodeFetchNativeUrl = {
  name: 'node-fetch-native-url',
  setup(b) {
    b.onResolve({ filter: /^whatwg-url$/ }, (args) =>
      /[\\/]node_modules[\\/]node-fetch[\\/]/.test(args.importer) ? { path: 'whatwg-url-native', namespace: 'pier-shim' } : undefined,
    );
    b.onLoad({ filter: /^whatwg-url-native$/, namespace: 'pier-shim' }, () => ({ contents: 'module.exports = { URL: globalThis.URL };', loader: 'js' }));
  },
};

mkdirSync(buildDir, { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // Never bundled: koffi's JS package loads its native addon, which cannot be in a snapshot.
  // load-koffi.ts loads the koffi.node asset itself (or koffi from node_modules in development).
  external: ['koffi'],
  plugins: [zodEnglishOnly],
  // Minified: the startup snapshot holds the source and every function's metadata, and a smaller
  // bundle deserialises faster (measured: ~1.4 ms less per process start). keepNames keeps
  // function names in the stack traces the log records (~0.2 ms of that back).
  minify: true,
  keepNames: true,
  logLevel: 'warning',
  // The list of files read, for the build stamp (scripts/build-stamp.mjs) and the check below.
  metafile: true,
  absWorkingDir: root,
};
const built = await esbuild.build({ ...common, entryPoints: [join(root, 'src/sea-entry.ts')], outfile: bundle });
// The plugin's bundle (and so its startup snapshot) must not carry the agent or its API client:
// `pier agent` evaluates build/pier-agent.cjs at run time instead. state.ts is the agent's state
// file format, which `pier status` reads (node:fs only).
const leaked = Object.keys(built.metafile.inputs).filter((f) => /node_modules\/@kubernetes\/|(^|\/)src\/agent\/(?!state\.ts$)/.test(f));
if (leaked.length) throw new Error(`the agent leaked into ${relative(root, bundle)}: ${leaked.join(', ')}`);
const agentBuilt = await esbuild.build({ ...common, plugins: [...common.plugins, nodeFetchNativeUrl], entryPoints: [join(root, 'src/agent/bundle-entry.ts')], outfile: agentBundle });
if (Object.keys(agentBuilt.metafile.inputs).some((f) => /node_modules\/tr46\//.test(f))) throw new Error(`tr46 is back in ${relative(root, agentBundle)}: see nodeFetchNativeUrl`);
console.log(`built ${relative(root, agentBundle)}`);
console.log(`built ${relative(root, bundle)}`);

if (dev) console.log('--dev: skipping the single executable (dist/pier, dist/pier-ipam)');
else buildExecutable();

function buildExecutable() {
  const koffiNode = findKoffiNode();
  // The hash names the copy that load-koffi.ts keeps in /run/pier/native between runs.
  writeFileSync(koffiSha256, `${createHash('sha256').update(readFileSync(koffiNode)).digest('hex')}\n`);
  const config = {
    main: relative(root, bundle),
    output: relative(root, seaBlob),
    disableExperimentalSEAWarning: true,
    useSnapshot: true,
    // Redundant with a snapshot (Node says so): the compiled functions are in the snapshot.
    useCodeCache: false,
    assets: { [KOFFI_ASSET]: relative(root, koffiNode), [KOFFI_SHA256_ASSET]: relative(root, koffiSha256), [AGENT_ASSET]: relative(root, agentBundle) },
  };
  writeFileSync(seaConfig, `${JSON.stringify(config, null, 2)}\n`);
  // Paths in the config are relative to the working directory.
  execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { cwd: root, stdio: 'inherit' });

  mkdirSync(distDir, { recursive: true });
  // Build beside the target and rename into place: a plugin run that starts meanwhile executes
  // either the old binary or the new one, never a half-injected file.
  const tmpExe = join(distDir, `.pier.${process.pid}.tmp`);
  const tmpLink = join(distDir, `.pier-ipam.${process.pid}.tmp`);
  rmSync(tmpExe, { force: true });
  rmSync(tmpLink, { force: true });
  copyFileSync(process.execPath, tmpExe);
  chmodSync(tmpExe, 0o755);
  // postject (LIEF) prints "Can't find string offset for section name '.note.100'" on Node's
  // binary; it is harmless (nodejs/postject#83).
  execFileSync(
    'npx',
    ['--no', 'postject', tmpExe, 'NODE_SEA_BLOB', seaBlob, '--sentinel-fuse', SEA_FUSE],
    { cwd: root, stdio: 'inherit' },
  );
  linkSync(tmpExe, tmpLink);
  renameSync(tmpExe, executable);
  renameSync(tmpLink, ipamLink);
  // What this dist/pier was made from: the e2e tests rebuild or refuse it when any of it changes.
  const here = fileURLToPath(import.meta.url);
  const inputs = [...Object.keys(built.metafile.inputs), ...Object.keys(agentBuilt.metafile.inputs)].filter((p) => !p.includes(':'));
  writeStamp(root, [...inputs, koffiNode, here, join(dirname(here), 'build-stamp.mjs')], executable);
  console.log(`built ${relative(root, executable)} and ${relative(root, ipamLink)} (hard link)`);
}

/** koffi.node from the @koromix/koffi-<platform>-<arch> package, for the libc this Node uses. */
function findKoffiNode() {
  const pkg = `@koromix/koffi-${process.platform}-${process.arch}`;
  const koffiRequire = createRequire(createRequire(import.meta.url).resolve('koffi'));
  const pkgDir = dirname(koffiRequire.resolve(`${pkg}/package.json`));
  // Triplet directories are <platform>_<abi> for glibc and musl_<abi> for musl (e.g. linux_x64).
  const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime);
  const prefix = process.platform === 'linux' && !glibc ? 'musl_' : `${process.platform}_`;
  const dirs = readdirSync(pkgDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name.startsWith(prefix))
    .map((d) => d.name);
  if (dirs.length !== 1) {
    throw new Error(`expected one ${prefix}* directory with koffi.node in ${pkgDir}, found: ${dirs.join(', ') || 'none'}`);
  }
  return join(pkgDir, dirs[0], 'koffi.node');
}

#!/usr/bin/env node
// `npm run image`: dist/pier-image.tar, Pier's container image as an OCI archive, FROM scratch
// and built offline (no base image, no registry, no daemon), for `ctr -n k8s.io images import`
// and `podman load`. It holds:
// - dist/pier as /usr/local/bin/pier (the DaemonSet's init container runs `pier install-cni`, its
//   main container `pier agent`, the default command);
// - the shared libraries dist/pier needs, and those of koffi.node (the native module the
//   executable carries and dlopens at run time), as `ldd` finds them, with the dynamic loader;
// - /usr/sbin/nft and its libraries: the agent keeps its masquerade table with `nft -j -f`;
// - /usr/bin/setpriv (util-linux) and its libraries: Pier runs nft under `setpriv --pdeathsig
//   KILL` when it finds it, so an nft child dies with a killed Pier (src/nft/runner.ts);
// - empty /etc, /run, /tmp and /var/lib: mount points, and where koffi.node is written when
//   /run/pier is not mounted (src/native/load-koffi.ts).
// Every path is the host's own, symlinks included (merged /usr: /lib -> usr/lib), so the ELF
// interpreter and library paths baked into the binaries resolve in the image as on the host.
//
// Reproducible: the layer's entries are sorted, owned by 0:0 and dated SOURCE_DATE_EPOCH (else
// 1970-01-01), so the same dist/pier and libraries give the same digest.
// Rebuilds dist/pier first when it is missing or stale (scripts/build-stamp.mjs).
//
// Usage: node scripts/pier-image.mjs [--out FILE] [--name REF] [--nft PATH] [--no-build]
import { spawnSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOciArchive, writeArchive } from './oci-image.mjs';
import { ensureFreshBuild, STAMP } from './build-stamp.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where pier sits in the image; the entrypoint. */
export const PIER_PATH = '/usr/local/bin/pier';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------- pure

/** The image's name: `localhost/pier:<version>`, what conf/kubernetes/pier.yaml runs. */
export const imageName = (version) => `localhost/pier:${version}`;

/**
 * The libraries in `ldd` output, the dynamic loader included: absolute paths in order of
 * appearance. The vDSO (no file) is skipped; a library `not found` is an error naming it.
 */
export function parseLdd(text, what = 'the executable') {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue;
    if (line === 'statically linked' || line === 'not a dynamic executable') continue;
    if (/=>\s*not found/.test(line)) throw new Error(`${what} needs ${line.split(/\s/)[0]}, which ldd does not find`);
    const m = line.match(/=>\s*(\/\S+)/) ?? line.match(/^(\/\S+)/);
    if (!m) throw new Error(`cannot read this ldd line of ${what}: ${JSON.stringify(line)}`);
    if (!out.includes(m[1])) out.push(m[1]);
  }
  return out;
}

/**
 * What it takes for `path` to resolve in the image as it does on the host: each symlink met on
 * the way (a directory symlink like /lib -> usr/lib, or the library's own libc.so.6 -> ...) and
 * the regular file at the end. `host` answers `{type: 'file'|'dir'|'symlink', mode, target?}`
 * for an absolute path. Adds to `into` (a Map from image path to that answer) and returns it.
 */
export function resolveInto(path, host, into = new Map(), hops = 0) {
  if (hops > 40) throw new Error(`${path}: too many symlinks`);
  const parts = path.split('/').filter(Boolean);
  let cur = '';
  for (let i = 0; i < parts.length; i++) {
    cur = `${cur}/${parts[i]}`;
    const st = host(cur);
    if (st.type === 'symlink') {
      into.set(cur, st);
      const base = st.target.startsWith('/') ? st.target : posix.join(posix.dirname(cur), st.target);
      return resolveInto(posix.normalize([base, ...parts.slice(i + 1)].join('/')), host, into, hops + 1);
    }
    const last = i === parts.length - 1;
    if (last && st.type !== 'file') throw new Error(`${cur} is not a regular file`);
    if (!last && st.type !== 'dir') throw new Error(`${cur} is not a directory`);
    if (!into.has(cur)) into.set(cur, st);
  }
  return into;
}

/**
 * The layer's entries, sorted, parents before children: every file and symlink of `files` (a
 * Map from image path to `{type, mode, target?, source?}`), the directories they need (0755
 * unless `files` says otherwise), and `dirs` (image path -> mode). Data is not read here: a
 * file entry carries `source`, the host path to read it from (default: its own path).
 */
export function layerPlan(files, dirs = new Map()) {
  const entries = new Map();
  const addDir = (p, mode = 0o755) => {
    if (!entries.has(p)) entries.set(p, { name: `${p.slice(1)}/`, type: 'dir', mode });
  };
  const addParents = (p) => {
    for (let d = posix.dirname(p); d !== '/'; d = posix.dirname(d)) addDir(d, files.get(d)?.type === 'dir' ? files.get(d).mode : undefined);
  };
  for (const [p, mode] of dirs) {
    addDir(p, mode);
    addParents(p);
  }
  for (const [p, st] of files) {
    addParents(p);
    if (st.type === 'dir') addDir(p, st.mode);
    else if (st.type === 'symlink') entries.set(p, { name: p.slice(1), type: 'symlink', mode: 0o777, linkname: st.target });
    else entries.set(p, { name: p.slice(1), type: 'file', mode: st.mode & 0o7777, source: st.source ?? p });
  }
  // The names sort with a directory's "/" after it, so a parent always comes first.
  return [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The OCI architecture of this machine (dist/pier is this machine's Node binary). */
export function ociArch(nodeArch = process.arch) {
  const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }[nodeArch];
  if (!arch) throw new Error(`no OCI architecture for Node's ${nodeArch}`);
  return arch;
}

/** The image config: `pier agent` by default; `args: [install-cni, ...]` in a pod replaces Cmd. */
export function imageOptions(version, arch = ociArch()) {
  return {
    name: imageName(version),
    entrypoint: [PIER_PATH],
    cmd: ['agent'],
    env: [PATH_ENV],
    workdir: '/',
    arch,
    os: 'linux',
    labels: {
      'org.opencontainers.image.title': 'pier',
      'org.opencontainers.image.description': 'Pier: a Kubernetes CNI plugin with its own IPAM, and its node agent',
      'org.opencontainers.image.version': version,
      'org.opencontainers.image.licenses': 'Apache-2.0',
    },
  };
}

/** Mount points and scratch dirs every container of the image needs (image path -> mode). */
export const IMAGE_DIRS = new Map([
  ['/etc', 0o755],
  ['/run', 0o755],
  ['/tmp', 0o1777],
  ['/var/lib', 0o755],
]);

// ---------------------------------------------------------------- the host

/** The host's answer for one path, as resolveInto() wants it. */
function hostStat(p) {
  const st = lstatSync(p);
  if (st.isSymbolicLink()) return { type: 'symlink', mode: 0o777, target: readlinkSync(p) };
  if (st.isDirectory()) return { type: 'dir', mode: st.mode & 0o7777 };
  if (st.isFile()) return { type: 'file', mode: st.mode & 0o7777 };
  throw new Error(`${p}: not a file, directory or symlink`);
}

function ldd(file) {
  const r = spawnSync('ldd', [file], { encoding: 'utf8' });
  if (r.error) throw new Error(`ldd ${file}: ${r.error.message} (ldd is in Debian's libc-bin)`);
  if (r.status !== 0 && !/not a dynamic executable/.test(r.stdout + r.stderr)) throw new Error(`ldd ${file}: ${r.stderr.trim()}`);
  return parseLdd(r.stdout + r.stderr, file);
}

/** The koffi.node that dist/pier embeds, as the build stamp records it. */
function embeddedKoffi(root) {
  const stamp = JSON.parse(readFileSync(join(root, STAMP), 'utf8'));
  const rel = Object.keys(stamp.files).find((f) => f.endsWith('/koffi.node'));
  if (!rel) throw new Error(`${STAMP} names no koffi.node: rebuild with npm run build`);
  return join(root, rel);
}

/** The first of `paths` that is a file, else an error saying which package has it. */
function which(paths, why) {
  for (const p of paths) {
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // next
    }
  }
  throw new Error(`${paths[0]} is not installed: ${why}`);
}
const whichNft = () => which(['/usr/sbin/nft', '/sbin/nft', '/usr/local/sbin/nft'], 'the agent runs it (Debian: apt-get install nftables)');
const whichSetpriv = () => which(['/usr/bin/setpriv', '/bin/setpriv'], 'nft runs under it (Debian: util-linux)');

/** Everything the image holds, read from this host: pier, the tools it runs, their libraries. */
export function hostPlan({ root = ROOT, pier = join(root, 'dist/pier'), koffi = embeddedKoffi(root), nft = whichNft(), setpriv = whichSetpriv() } = {}) {
  const files = new Map();
  const tools = [nft, setpriv];
  for (const lib of new Set([pier, koffi, ...tools].flatMap(ldd))) resolveInto(lib, hostStat, files);
  for (const tool of tools) resolveInto(tool, hostStat, files);
  files.set(PIER_PATH, { type: 'file', mode: 0o755, source: pier });
  return layerPlan(files, IMAGE_DIRS);
}

function parseArgs(argv) {
  const o = { out: join(ROOT, 'dist/pier-image.tar'), build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-build') o.build = false;
    else if (['--out', '--name', '--nft'].includes(a)) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      o[a.slice(2)] = a === '--name' ? v : resolve(v);
    } else throw new Error(`unknown argument ${a} (usage: pier-image.mjs [--out FILE] [--name REF] [--nft PATH] [--no-build])`);
  }
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  try {
    const o = parseArgs(process.argv.slice(2));
    if (o.build) ensureFreshBuild(ROOT);
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    const plan = hostPlan({ ...(o.nft && { nft: o.nft }) });
    const entries = plan.map(({ source, ...e }) => (e.type === 'file' ? { ...e, data: readFileSync(source) } : e));
    const opts = imageOptions(version);
    const { archive, digest } = buildOciArchive({ ...opts, ...(o.name && { name: o.name }), entries });
    writeArchive(o.out, archive);
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    const unpacked = entries.reduce((s, e) => s + (e.data?.length ?? 0), 0);
    console.error(`pier-image: ${o.out}: ${o.name ?? opts.name}, ${entries.filter((e) => e.type === 'file').length} files, ${mb(unpacked)} unpacked, ${mb(archive.length)} archive`);
    console.log(digest);
  } catch (err) {
    console.error(`pier-image: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  }
}

// The pure part of `npm run image` (scripts/pier-image.mjs): ldd's output read, every symlink on
// a library's path kept (merged /usr, the loader's absolute link, sonames), the layer's entries
// sorted with parents first, the image config (`pier agent` by default), and the archive the
// packer makes from them: its config and its layer's file list, read back with GNU tar.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { IMAGE_DIRS, PIER_PATH, hostPlan, imageName, imageOptions, layerPlan, ociArch, parseLdd, resolveInto, type HostStat } from './pier-image.mjs';
import { buildOciArchive } from './oci-image.mjs';

const dir = mkdtempSync(join(tmpdir(), 'pt-pier-image-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// ldd on Debian 12, as it printed for dist/pier.
const LDD_PIER = `	linux-vdso.so.1 (0x00007efc3a974000)
	libdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007efc3a95e000)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007efc3a600000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007efc3a41e000)
	/lib64/ld-linux-x86-64.so.2 (0x00007efc3a976000)
`;

test('parseLdd: every library and the loader, no vDSO; a missing library is an error naming it', () => {
  assert.deepEqual(parseLdd(LDD_PIER), [
    '/lib/x86_64-linux-gnu/libdl.so.2',
    '/lib/x86_64-linux-gnu/libstdc++.so.6',
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib64/ld-linux-x86-64.so.2',
  ]);
  assert.deepEqual(parseLdd('\tstatically linked\n'), []);
  assert.throws(() => parseLdd(`${LDD_PIER}\tlibnftables.so.1 => not found\n`, '/usr/sbin/nft'), /\/usr\/sbin\/nft needs libnftables\.so\.1, which ldd does not find/);
  assert.throws(() => parseLdd('\tsomething odd\n'), /cannot read this ldd line/);
});

// A merged-/usr host as Debian 12 has it.
const HOST: Record<string, HostStat> = {
  '/lib': { type: 'symlink', mode: 0o777, target: 'usr/lib' },
  '/lib64': { type: 'symlink', mode: 0o777, target: 'usr/lib64' },
  '/usr': { type: 'dir', mode: 0o755 },
  '/usr/lib': { type: 'dir', mode: 0o755 },
  '/usr/lib64': { type: 'dir', mode: 0o755 },
  '/usr/lib/x86_64-linux-gnu': { type: 'dir', mode: 0o755 },
  '/usr/lib64/ld-linux-x86-64.so.2': { type: 'symlink', mode: 0o777, target: '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2' },
  '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2': { type: 'file', mode: 0o755 },
  '/usr/lib/x86_64-linux-gnu/libc.so.6': { type: 'file', mode: 0o755 },
  '/usr/lib/x86_64-linux-gnu/libdl.so.2': { type: 'file', mode: 0o644 },
  '/usr/lib/x86_64-linux-gnu/libstdc++.so.6': { type: 'symlink', mode: 0o777, target: 'libstdc++.so.6.0.30' },
  '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30': { type: 'file', mode: 0o644 },
  '/usr/sbin': { type: 'dir', mode: 0o755 },
  '/usr/sbin/nft': { type: 'file', mode: 0o755 },
};
const host = (p: string): HostStat => {
  const st = HOST[p];
  if (!st) throw new Error(`ENOENT ${p}`);
  return st;
};

test('resolveInto keeps each symlink on the way, relative or absolute, and the file it ends at', () => {
  const files = new Map<string, HostStat>();
  for (const lib of parseLdd(LDD_PIER)) resolveInto(lib, host, files);
  const kinds = Object.fromEntries([...files].map(([p, st]) => [p, st.type === 'symlink' ? `-> ${st.target}` : st.type]));
  assert.deepEqual(kinds, {
    '/lib': '-> usr/lib',
    '/usr': 'dir',
    '/usr/lib': 'dir',
    '/usr/lib/x86_64-linux-gnu': 'dir',
    '/usr/lib/x86_64-linux-gnu/libdl.so.2': 'file',
    '/usr/lib/x86_64-linux-gnu/libstdc++.so.6': '-> libstdc++.so.6.0.30',
    '/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30': 'file',
    '/usr/lib/x86_64-linux-gnu/libc.so.6': 'file',
    '/lib64': '-> usr/lib64',
    '/usr/lib64': 'dir',
    '/usr/lib64/ld-linux-x86-64.so.2': '-> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2': 'file',
  });
  assert.throws(() => resolveInto('/usr/lib', host), /is not a regular file/);
  const loop = (p: string): HostStat => (p === '/a' ? { type: 'symlink', mode: 0o777, target: '/a' } : host(p));
  assert.throws(() => resolveInto('/a', loop), /too many symlinks/);
});

/** The plan Debian 12 gives: pier and nft with dist/pier's libraries. */
function debianPlan() {
  const files = new Map<string, HostStat>();
  for (const lib of parseLdd(LDD_PIER)) resolveInto(lib, host, files);
  resolveInto('/usr/sbin/nft', host, files);
  files.set(PIER_PATH, { type: 'file', mode: 0o755, source: '/build/dist/pier' });
  return layerPlan(files, IMAGE_DIRS);
}

test('layerPlan: sorted, every parent dir before its children, pier read from dist/pier', () => {
  const plan = debianPlan();
  assert.deepEqual(plan.map((e) => `${e.name}${e.type === 'symlink' ? ` -> ${e.linkname}` : ''} ${e.mode.toString(8)}`), [
    'etc/ 755',
    'lib -> usr/lib 777',
    'lib64 -> usr/lib64 777',
    'run/ 755',
    'tmp/ 1777',
    'usr/ 755',
    'usr/lib/ 755',
    'usr/lib/x86_64-linux-gnu/ 755',
    'usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 755',
    'usr/lib/x86_64-linux-gnu/libc.so.6 755',
    'usr/lib/x86_64-linux-gnu/libdl.so.2 644',
    'usr/lib/x86_64-linux-gnu/libstdc++.so.6 -> libstdc++.so.6.0.30 777',
    'usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30 644',
    'usr/lib64/ 755',
    'usr/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 777',
    'usr/local/ 755',
    'usr/local/bin/ 755',
    'usr/local/bin/pier 755',
    'usr/sbin/ 755',
    'usr/sbin/nft 755',
    'var/ 755',
    'var/lib/ 755',
  ]);
  assert.equal(plan.find((e) => e.name === 'usr/local/bin/pier')?.source, '/build/dist/pier');
  assert.equal(plan.find((e) => e.name === 'usr/sbin/nft')?.source, '/usr/sbin/nft');
});

test('the image runs `pier agent` by default, is named localhost/pier:<version>, linux and the build machine\'s architecture', () => {
  assert.equal(ociArch('x64'), 'amd64');
  assert.equal(ociArch('arm64'), 'arm64');
  assert.throws(() => ociArch('mips'), /no OCI architecture/);
  assert.equal(imageOptions('1.2.3').arch, ociArch(process.arch));
  const o = imageOptions('1.2.3', 'amd64');
  assert.equal(o.name, 'localhost/pier:1.2.3');
  assert.equal(imageName('1.2.3'), o.name);
  assert.deepEqual(o.entrypoint, ['/usr/local/bin/pier']);
  assert.deepEqual(o.cmd, ['agent']);
  assert.deepEqual([o.arch, o.os], ['amd64', 'linux']);
  assert.equal(o.labels['org.opencontainers.image.version'], '1.2.3');
});

test('the archive: config and index as asked, the layer holds exactly the plan, and the same input gives the same bytes', () => {
  const entries = debianPlan().map(({ source, ...e }) => (e.type === 'file' ? { ...e, data: Buffer.from(`contents of ${source}\n`) } : e));
  const { archive, digest } = buildOciArchive({ ...imageOptions('1.2.3', 'amd64'), entries });
  assert.deepEqual(buildOciArchive({ ...imageOptions('1.2.3', 'amd64'), entries }).archive, archive, 'reproducible');
  const out = join(dir, 'layout');
  mkdirSync(out);
  writeFileSync(join(dir, 'image.tar'), archive);
  assert.equal(spawnSync('tar', ['-xf', join(dir, 'image.tar'), '-C', out]).status, 0);
  const blob = (d: string) => readFileSync(join(out, 'blobs/sha256', d.slice('sha256:'.length)));
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, digest);
  assert.deepEqual(index.manifests[0].annotations, { 'io.containerd.image.name': 'localhost/pier:1.2.3', 'org.opencontainers.image.ref.name': 'localhost/pier:1.2.3' });
  const manifest = JSON.parse(blob(digest).toString());
  const config = JSON.parse(blob(manifest.config.digest).toString());
  assert.equal(config.architecture, 'amd64');
  assert.equal(config.os, 'linux');
  assert.deepEqual(config.config.Entrypoint, ['/usr/local/bin/pier']);
  assert.deepEqual(config.config.Cmd, ['agent']);
  assert.deepEqual(config.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  writeFileSync(join(dir, 'layer.tar'), gunzipSync(blob(manifest.layers[0].digest)));
  const listed = spawnSync('tar', ['-tvf', join(dir, 'layer.tar')], { encoding: 'utf8' }).stdout.trim().split('\n');
  assert.deepEqual(listed.map((l) => l.split(/\s+/).slice(5).join(' ')), entries.map((e) => (e.type === 'symlink' ? `${e.name} -> ${e.linkname}` : e.name)));
  assert.ok(listed.every((l) => l.includes('root/root') && l.includes('1970-01-01 00:00')), 'owned by root, dated the epoch');
});

test('hostPlan on this machine: every library ldd names for the executables, with its loader', () => {
  // Any dynamic executables stand in for dist/pier, koffi.node, nft and setpriv.
  const plan = hostPlan({ root: dir, pier: '/bin/ls', koffi: '/bin/ls', nft: '/bin/true', setpriv: '/bin/false' });
  const names = new Set(plan.map((e) => e.name));
  assert.ok(names.has('usr/local/bin/pier'));
  for (const lib of parseLdd(spawnSync('ldd', ['/bin/ls'], { encoding: 'utf8' }).stdout)) {
    // Each path ldd printed resolves inside the layer: its first component is in the plan.
    assert.ok(names.has(lib.split('/')[1]) || names.has(`${lib.split('/')[1]}/`), lib);
    assert.ok([...names].some((n) => n.endsWith(lib.split('/').pop()!)), `${lib} is in the layer`);
  }
});

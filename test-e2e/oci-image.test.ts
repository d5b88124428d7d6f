// scripts/oci-image.mjs: an OCI image archive from a root filesystem dir, checked with GNU tar
// (another implementation reads what it wrote) and against the OCI image layout: every blob
// named by its digest, the config, manifest and index pointing at each other, the image config
// carrying entrypoint, cmd, env, workdir, labels, user and ports; reproducible.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ROOT } from './cni-harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'pt-oci-image-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SCRIPT = join(ROOT, 'scripts/oci-image.mjs');

function pack(rootfs: string, out: string, extra: string[] = []) {
  return spawnSync(process.execPath, [SCRIPT, '--rootfs', rootfs, '--name', 'localhost/pier/test:v1', '--out', out, ...extra], { encoding: 'utf8' });
}

function untar(archive: string, into: string) {
  mkdirSync(into, { recursive: true });
  const r = spawnSync('tar', ['-xf', archive, '-C', into], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const blob = (layout: string, digest: string) => readFileSync(join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));

// A tree with what images hold: nested dirs, an executable, a symlink, a hard link, a path over
// the 100 bytes a plain tar header holds.
const rootfs = join(dir, 'rootfs');
const longDir = join(rootfs, 'usr/share', 'a'.repeat(60), 'b'.repeat(60));
mkdirSync(longDir, { recursive: true });
mkdirSync(join(rootfs, 'bin'));
writeFileSync(join(rootfs, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
symlinkSync('tool', join(rootfs, 'bin/alias'));
linkSync(join(rootfs, 'bin/tool'), join(rootfs, 'bin/same'));
writeFileSync(join(longDir, 'file.txt'), 'deep\n');

test('the archive is an OCI layout whose blobs match their digests, and the image config says what was asked', () => {
  const out = join(dir, 'image.tar');
  const r = pack(rootfs, out, [
    '--entrypoint', '["/bin/tool"]', '--cmd', '["--flag"]', '--env', 'PATH=/bin', '--env', 'A=b=c', '--workdir', '/srv',
    '--label', 'org.opencontainers.image.source=pier', '--user', '65534', '--expose', '8080', '--expose', '53/udp',
  ]);
  assert.equal(r.status, 0, r.stderr);
  const layout = join(dir, 'layout');
  untar(out, layout);
  assert.deepEqual(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  assert.equal(index.schemaVersion, 2);
  const m = index.manifests[0];
  assert.equal(r.stdout.trim(), m.digest, 'prints the manifest digest');
  assert.deepEqual(m.annotations, { 'io.containerd.image.name': 'localhost/pier/test:v1', 'org.opencontainers.image.ref.name': 'localhost/pier/test:v1' });
  assert.deepEqual(m.platform, { architecture: 'amd64', os: 'linux' });
  const manifestBytes = blob(layout, m.digest);
  assert.equal(sha(manifestBytes), m.digest);
  assert.equal(manifestBytes.length, m.size);
  const manifest = JSON.parse(manifestBytes.toString());
  const configBytes = blob(layout, manifest.config.digest);
  assert.equal(sha(configBytes), manifest.config.digest);
  const config = JSON.parse(configBytes.toString());
  assert.deepEqual(config.config, {
    User: '65534',
    ExposedPorts: { '8080/tcp': {}, '53/udp': {} },
    Env: ['PATH=/bin', 'A=b=c'],
    Entrypoint: ['/bin/tool'],
    Cmd: ['--flag'],
    WorkingDir: '/srv',
    Labels: { 'org.opencontainers.image.source': 'pier' },
  });
  assert.equal(config.created, '1970-01-01T00:00:00.000Z');
  const layerGz = blob(layout, manifest.layers[0].digest);
  assert.equal(sha(layerGz), manifest.layers[0].digest);
  assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const layer = gunzipSync(layerGz);
  assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [sha(layer)] });

  // The layer, unpacked by GNU tar, is the tree.
  const layerFile = join(dir, 'layer.tar');
  writeFileSync(layerFile, layer);
  const unpacked = join(dir, 'unpacked');
  untar(layerFile, unpacked);
  assert.equal(readFileSync(join(unpacked, 'bin/tool'), 'utf8'), '#!/bin/sh\necho tool\n');
  assert.equal(statSync(join(unpacked, 'bin/tool')).mode & 0o777, 0o755);
  assert.equal(readlinkSync(join(unpacked, 'bin/alias')), 'tool');
  assert.equal(statSync(join(unpacked, 'bin/same')).ino, statSync(join(unpacked, 'bin/tool')).ino, 'the hard link stays one file');
  assert.equal(readFileSync(join(unpacked, 'usr/share', 'a'.repeat(60), 'b'.repeat(60), 'file.txt'), 'utf8'), 'deep\n');
  const names = spawnSync('tar', ['-tvf', layerFile], { encoding: 'utf8' }).stdout;
  assert.match(names, /root\/root/, 'owned by root');
});

test('the same tree gives the same digest; --created and --no-gzip change it as asked', () => {
  const a = pack(rootfs, join(dir, 'a.tar'));
  const b = pack(rootfs, join(dir, 'b.tar'));
  assert.equal(a.stdout, b.stdout);
  assert.deepEqual(readFileSync(join(dir, 'a.tar')), readFileSync(join(dir, 'b.tar')));
  const c = pack(rootfs, join(dir, 'c.tar'), ['--created', '2024-01-02T03:04:05Z']);
  assert.notEqual(c.stdout, a.stdout);
  const d = pack(rootfs, join(dir, 'd.tar'), ['--no-gzip']);
  untar(join(dir, 'd.tar'), join(dir, 'd'));
  const m = JSON.parse(blob(join(dir, 'd'), d.stdout.trim()).toString());
  assert.equal(m.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar');
});

test('bad arguments and unpackable files are refused, and nothing is written', () => {
  const out = join(dir, 'bad.tar');
  for (const args of [['--entrypoint', '/bin/tool'], ['--env', 'NOVALUE'], ['--frob', 'x'], ['--created', 'yesterday']]) {
    const r = pack(rootfs, out, args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, /^oci-image: /);
  }
  const fifoRoot = join(dir, 'fifo-rootfs');
  mkdirSync(fifoRoot);
  assert.equal(spawnSync('mkfifo', [join(fifoRoot, 'pipe')]).status, 0);
  const r = pack(fifoRoot, out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /FIFOs/);
  assert.equal(spawnSync('test', ['-e', out]).status, 1, 'no archive written');
});

// The CRI tests' images, made without a registry: a static pause (pause.c, `gcc -static`) and
// Debian's busybox-static, each packed by scripts/oci-image.mjs into an OCI archive that
// `ctr images import` reads. Built once per process into a temp dir.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const BUSYBOX = '/bin/busybox';
const TAG = '1';

export interface TestImage {
  ref: string;
  archive: string;
}

export interface TestImages {
  pause: TestImage;
  busybox: TestImage;
}

let built: { dir: string; images: TestImages } | undefined;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

function pack(rootfs: string, ref: string, out: string, extra: string[]): TestImage {
  run(process.execPath, [join(ROOT, 'scripts/oci-image.mjs'), '--rootfs', rootfs, '--name', ref, '--out', out, ...extra]);
  return { ref, archive: out };
}

/** What is missing to build the images, in one line, or undefined. */
export function missingImageDeps(): string | undefined {
  const missing: string[] = [];
  if (spawnSync('sh', ['-c', 'command -v gcc']).status !== 0) missing.push('gcc');
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libc.a') && !existsSync('/usr/lib/libc.a')) missing.push('libc6-dev (libc.a for gcc -static)');
  if (!existsSync(BUSYBOX)) missing.push(`${BUSYBOX} (busybox-static)`);
  return missing.length ? `missing ${missing.join(', ')}: run scripts/install-cri-deps.sh` : undefined;
}

/**
 * The two archives, built on the first call of this process into a temp dir removed at exit
 * (named `pt-...` like every test's temp files, which the file-system checks of the reliability
 * tests leave to their owners).
 */
export function testImages(): TestImages {
  if (built) return built.images;
  const dir = mkdtempSync(join(tmpdir(), 'pt-cri-images-'));
  try {
    const pauseRoot = join(dir, 'pause-rootfs');
    mkdirSync(pauseRoot);
    run('gcc', ['-static', '-Os', '-s', '-Wall', '-o', join(pauseRoot, 'pause'), join(import.meta.dirname, 'pause.c')]);
    const pause = pack(pauseRoot, `localhost/pier-test/pause:${TAG}`, join(dir, 'pause.tar'), ['--entrypoint', '["/pause"]']);

    // busybox with a link per applet, and /bin/hello: what a test server (`nc -ll -p PORT -e
    // /bin/hello`) answers, naming the pod that answered.
    const bb = join(dir, 'busybox-rootfs');
    for (const d of ['bin', 'etc', 'root', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(bb, d), { recursive: true });
    chmodSync(join(bb, 'tmp'), 0o1777);
    copyFileSync(BUSYBOX, join(bb, 'bin/busybox'));
    chmodSync(join(bb, 'bin/busybox'), 0o755);
    for (const applet of run(BUSYBOX, ['--list']).split('\n').filter(Boolean)) {
      if (applet !== 'busybox') symlinkSync('busybox', join(bb, 'bin', applet));
    }
    writeFileSync(join(bb, 'bin/hello'), '#!/bin/sh\necho "hello from $(hostname)"\n', { mode: 0o755 });
    writeFileSync(join(bb, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(bb, 'etc/group'), 'root:x:0:\n');
    const busybox = pack(bb, `localhost/pier-test/busybox:${TAG}`, join(dir, 'busybox.tar'), [
      '--cmd', '["/bin/sh"]', '--env', 'PATH=/bin', '--workdir', '/', '--label', 'org.opencontainers.image.source=busybox-static',
    ]);
    built = { dir, images: { pause, busybox } };
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return built.images;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

let pierBuilt: TestImage | undefined;

/**
 * Pier's own image, built from the current dist/pier by `scripts/pier-image.mjs` (what `npm run
 * image` runs) into a temp dir once per process, so it always matches the tree (call
 * ensureBuilt() first). Named as conf/kubernetes/pier.yaml expects: localhost/pier:<version>.
 */
export function pierImage(): TestImage {
  if (pierBuilt) return pierBuilt;
  const dir = mkdtempSync(join(tmpdir(), 'pt-pier-image-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const archive = join(dir, 'pier-image.tar');
  run(process.execPath, [join(ROOT, 'scripts/pier-image.mjs'), '--no-build', '--out', archive]);
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  pierBuilt = { ref: `localhost/pier:${version}`, archive };
  return pierBuilt;
}

// pier install-cni: both names in place, replaced by rename (a running plugin keeps its file,
// no ETXTBSY), never half-written under the final name whatever step fails, leftovers of a
// killed run cleared, and the CLI's errors.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNI_NAMES, TEMP_PREFIX, installCni, type InstallFs } from './install-cni.ts';
import { runCli } from './cli.ts';

const dir = fs.mkdtempSync(join(tmpdir(), 'pt-install-cni-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (what: string) => join(dir, `${what}-${++n}`);

/** A source executable with distinct content. */
function source(text: string): string {
  const p = fresh('src');
  fs.writeFileSync(p, `#!/bin/sh\n# ${text}\necho ${text}\n`, { mode: 0o700 });
  return p;
}

const read = (p: string) => fs.readFileSync(p, 'utf8');

test('installs pier and pier-ipam (one inode, mode 0755), making the dest dir', () => {
  const dest = join(fresh('dest'), 'opt/cni/bin');
  const src = source('v1');
  const paths = installCni({ source: src, dest });
  assert.deepEqual(paths, [join(dest, 'pier'), join(dest, 'pier-ipam')]);
  for (const p of paths) {
    assert.equal(read(p), read(src));
    assert.equal(fs.statSync(p).mode & 0o777, 0o755);
  }
  assert.equal(fs.statSync(paths[0]).ino, fs.statSync(paths[1]).ino, 'pier-ipam is a hard link to pier');
  assert.deepEqual(fs.readdirSync(dest).sort(), ['pier', 'pier-ipam'], 'no temp file left');
});

test('an upgrade renames over the old files: a pier running from the old file keeps running, no ETXTBSY', async () => {
  const dest = fresh('dest');
  // A real executable that stays running: a copy of sleep, installed as pier.
  const sleep = fresh('sleep');
  fs.copyFileSync('/bin/sleep', sleep);
  installCni({ source: sleep, dest });
  const oldIno = fs.statSync(join(dest, 'pier')).ino;
  const running = spawn(join(dest, 'pier'), ['300'], { stdio: 'ignore' });
  after(() => running.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => running.once('spawn', resolve).once('error', reject));
  // exec has happened: the kernel now refuses writes to that inode (ETXTBSY).
  const v2 = source('v2');
  installCni({ source: v2, dest });
  assert.equal(read(join(dest, 'pier')), read(v2));
  assert.equal(read(join(dest, 'pier-ipam')), read(v2));
  assert.notEqual(fs.statSync(join(dest, 'pier')).ino, oldIno, 'a new inode under the name');
  assert.equal(running.exitCode, null, 'the old pier still runs');
  assert.match(fs.readlinkSync(`/proc/${running.pid}/exe`), /\(deleted\)$/, 'from its old, now unnamed, file');
  running.kill('SIGKILL');
});

/** node:fs, with the `failAt`-th mutating call throwing; `log` records every call in order. */
function failingFs(failAt: number, log: string[]): InstallFs {
  let calls = 0;
  const wrap = <K extends keyof InstallFs>(name: K, mutating: boolean) =>
    ((...args: unknown[]) => {
      log.push(`${name} ${args.filter((x) => typeof x === 'string' || typeof x === 'number').join(' ')}`);
      if (mutating && ++calls === failAt) throw Object.assign(new Error(`${name}: EIO (injected)`), { code: 'EIO' });
      return (fs[name] as (...a: unknown[]) => unknown)(...args);
    }) as InstallFs[K];
  return {
    copyFileSync: wrap('copyFileSync', true),
    chmodSync: wrap('chmodSync', true),
    openSync: wrap('openSync', false),
    fsyncSync: wrap('fsyncSync', true),
    closeSync: wrap('closeSync', false),
    linkSync: wrap('linkSync', true),
    renameSync: wrap('renameSync', true),
    rmSync: wrap('rmSync', false),
    readdirSync: wrap('readdirSync', false),
    mkdirSync: wrap('mkdirSync', true),
    statSync: wrap('statSync', false),
  };
}

test('whichever step fails, each final name holds the old file or the new one, whole, and no temp file stays', () => {
  const v1 = source('v1');
  const v2 = source('v2');
  const log: string[] = [];
  installCni({ source: v2, dest: fresh('dest') }, failingFs(0, log));
  const mutating = log.filter((l) => /^(copyFileSync|chmodSync|fsyncSync|linkSync|renameSync|mkdirSync) /.test(l)).length;
  assert.ok(mutating >= 7, `${mutating} steps`);
  for (let failAt = 1; failAt <= mutating; failAt++) {
    const dest = fresh('dest');
    installCni({ source: v1, dest });
    try {
      installCni({ source: v2, dest, tag: 7 }, failingFs(failAt, []));
      // Only a refused hard link is not an error: pier-ipam becomes a copy.
      assert.equal(fs.statSync(join(dest, 'pier-ipam')).ino !== fs.statSync(join(dest, 'pier')).ino, true, `step ${failAt} succeeded`);
    } catch (err) {
      assert.match(String(err), /EIO \(injected\)/, `step ${failAt}`);
    }
    for (const name of CNI_NAMES) {
      const text = read(join(dest, name));
      assert.ok(text === read(v1) || text === read(v2), `step ${failAt}: ${name} is v1 or v2, whole`);
    }
    assert.deepEqual(fs.readdirSync(dest).filter((f) => f.startsWith(TEMP_PREFIX)), [], `step ${failAt}: temp files removed`);
    // The next run puts the new version in place.
    installCni({ source: v2, dest });
    for (const name of CNI_NAMES) assert.equal(read(join(dest, name)), read(v2));
  }
});

test('the temp file is complete and fsynced before it is renamed, and the dir is fsynced after', () => {
  const log: string[] = [];
  const dest = fresh('dest');
  installCni({ source: source('v1'), dest, tag: 9 }, failingFs(0, log));
  const tmp = join(dest, `${TEMP_PREFIX}pier.9`);
  const at = (re: RegExp) => log.findIndex((l) => re.test(l));
  const copied = at(new RegExp(`^copyFileSync .* ${tmp}$`));
  const synced = log.findIndex((l, i) => i > copied && l.startsWith('fsyncSync'));
  const renamed = at(new RegExp(`^renameSync ${tmp} ${join(dest, 'pier')}$`));
  const dirSynced = log.findIndex((l, i) => i > renamed && l === `openSync ${dest} r`);
  assert.ok(copied >= 0 && synced > copied && renamed > synced && dirSynced > renamed, log.join('\n'));
});

test('temp files a killed run left are removed; other files in the dir are not', () => {
  const dest = fresh('dest');
  fs.mkdirSync(dest);
  fs.writeFileSync(join(dest, `${TEMP_PREFIX}pier.12345`), 'half');
  fs.writeFileSync(join(dest, 'bridge'), 'another plugin');
  installCni({ source: source('v1'), dest });
  assert.deepEqual(fs.readdirSync(dest).sort(), ['bridge', 'pier', 'pier-ipam']);
  assert.equal(read(join(dest, 'bridge')), 'another plugin');
});

async function cli(argv: string[]) {
  let out = '';
  let err = '';
  const code = await runCli({ argv, env: {}, stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

test('pier install-cni: --source and --dest; from source without --source, and a missing source, are clear errors', async () => {
  const dest = fresh('dest');
  const ok = await cli(['install-cni', '--source', source('v1'), '--dest', dest]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.out, `installed ${join(dest, 'pier')}\ninstalled ${join(dest, 'pier-ipam')}\n`);
  const noSource = await cli(['install-cni', '--dest', fresh('dest')]);
  assert.equal(noSource.code, 1);
  assert.match(noSource.err, /^pier install-cni: this pier runs from source.*\n  hint: pass --source dist\/pier/);
  const missing = await cli(['install-cni', '--source', join(dir, 'nope'), '--dest', dest]);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /ENOENT/);
  const help = await cli(['install-cni', '--help']);
  assert.match(help.out, /^Usage: pier install-cni \[--dest DIR\] \[--source FILE\]/);
  assert.match(help.out, /--dest DIR +the CNI bin dir .*default \/opt\/cni\/bin/);
});

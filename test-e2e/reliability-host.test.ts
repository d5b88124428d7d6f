// Least surprise on the host: the store is private (directories 0700, files 0600), the native
// module is never mapped from a file a non-root user could have written, the log is bounded,
// a lock wait is bounded (code 11, "try again later"), and no external command goes through a
// shell.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, PIER, ROOT, TestWorld } from './cni-harness.ts';
import { callAsync, keepLog } from './reliability-common.ts';

describe('least surprise on the host', () => {
  let w: TestWorld;
  let conf: ReturnType<TestWorld['conf']>;
  let pod: string;
  const children: ChildProcess[] = [];

  before(() => {
    ensureBuilt();
    w = new TestWorld();
    conf = w.conf('1.0.0', { subnet: '10.235.0.0/24', extra: { ipMasq: true } });
    pod = w.addPod();
  });

  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
    keepLog(w, 'host');
    w?.cleanup.runAll();
  });

  const add = (cid: string, ifname: string) => callAsync(w, { command: 'ADD', containerId: cid, netns: w.netnsPath(pod), ifname }, conf);

  it('store directories are 0700 and files 0600 after ADDs', async () => {
    for (const [cid, ifname] of [['m1', 'eth0'], ['m2', 'eth1']]) assert.equal((await add(cid, ifname)).status, 0);
    const walk = (dir: string): string[] => [dir, ...readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]))];
    const paths = walk(join(w.dataDir, conf.name));
    assert.ok(paths.length >= 6, paths.join(' '));
    for (const p of paths) {
      const st = statSync(p);
      assert.equal(st.mode & 0o777, st.isDirectory() ? 0o700 : 0o600, `${p} is ${(st.mode & 0o777).toString(8)}`);
      assert.equal(st.uid, 0);
    }
  });

  it('a held store lock: ADD fails with code 11 within the bound; koffi is mapped from a root-only place', async () => {
    const lock = join(w.dataDir, conf.name, 'lock');
    // util-linux flock holds the store's lock as a wedged peer would.
    // -o: the lock stays with flock itself, not its `sleep` (killed below by PID, both).
    const holder = spawn('flock', ['-o', lock, 'sleep', '30'], { stdio: 'ignore' });
    children.push(holder);
    await new Promise((r) => setTimeout(r, 300));
    const sleeper = Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    const t0 = Date.now();
    const child = w.spawn({ command: 'ADD', containerId: 'm3', netns: w.netnsPath(pod), ifname: 'eth2' }, conf);
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // While it waits on the lock: which files back its executable mappings?
    await new Promise((r) => setTimeout(r, 1500));
    const maps = readFileSync(`/proc/${child.pid}/maps`, 'utf8').split('\n');
    const code = await done;
    const took = Date.now() - t0;
    process.kill(holder.pid!, 'SIGKILL');
    if (sleeper > 0) process.kill(sleeper, 'SIGKILL');

    assert.equal(code, 1);
    const e = JSON.parse(stdout);
    assert.equal(e.code, 11, stdout);
    assert.match(e.msg, /try again later/);
    assert.ok(took >= 9_000 && took < 14_000, `gave up after ${took} ms (bound 10 s)`);

    const files = [...new Set(maps.map((l) => l.trim().split(/\s+/).slice(5).join(' ')).filter((p) => p.startsWith('/')))];
    const koffi = files.filter((p) => /koffi|\(deleted\)/.test(p) && !p.startsWith('/dev/') && !p.startsWith('/memfd:'));
    assert.ok(koffi.length >= 1, `no koffi mapping found in ${files.join(', ')}`);
    for (const p of koffi) {
      if (p.endsWith(' (deleted)')) {
        // An O_TMPFILE inode: it never had a name, so nobody could open or replace it.
        continue;
      }
      // The copy kept on tmpfs between runs, or the verified fallback under /var/lib.
      const m = /^(\/run\/pier|\/var\/lib\/pier)\/native\/koffi-[0-9a-f]{32}\.node$/.exec(p);
      assert.ok(m, `native module mapped from ${p}`);
      for (const d of [`${m[1]}/native`, m[1]]) {
        const dir = statSync(d);
        assert.equal(dir.uid, 0, `${d} is root's`);
        assert.equal(dir.mode & 0o022, 0, `${d} is not group/world-writable`);
      }
      const file = statSync(p);
      assert.equal(file.uid, 0);
      assert.equal(file.mode & 0o222, 0, `${p} is read-only`);
    }
    // Nothing mapped from a named file in a world-writable place.
    // (The executable itself is wherever the checkout is: not Pier's choice.)
    for (const p of files) assert.ok(p === PIER || !/^\/(tmp|var\/tmp|dev\/shm)\/.*[^)]$/.test(p), `mapped from world-writable ${p}`);
  });

  it('the log file is bounded: past 5 MiB it rotates to .1', async () => {
    writeFileSync(w.logFile, `${'x'.repeat(1023)}\n`.repeat(5 * 1024));
    assert.ok(statSync(w.logFile).size >= 5 * 1024 * 1024);
    const r = await callAsync(w, { command: 'DEL', containerId: 'nobody', ifname: 'eth9' }, conf);
    assert.equal(r.status, 0, r.stdout);
    assert.ok(existsSync(`${w.logFile}.1`), 'rotated to pier.log.1');
    assert.ok(statSync(w.logFile).size < 64 * 1024, `pier.log restarted (${statSync(w.logFile).size} bytes)`);
    assert.ok(statSync(`${w.logFile}.1`).size <= 5 * 1024 * 1024 + 64 * 1024);
  });

  it('no external command through a shell: no shell: true, exec( or execSync( in src', () => {
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    const offenders: string[] = [];
    for (const f of walk(join(ROOT, 'src')).filter((p) => p.endsWith('.ts') && !p.endsWith('.test.ts'))) {
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (/shell:\s*true|\bexecSync\s*\(|(?<![.\w])exec\s*\(|child_process['"].*\bexec\b|\bexecaCommand|\$`/.test(line)) offenders.push(`${f}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(offenders, []);
  });
});

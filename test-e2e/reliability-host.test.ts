// Least surprise on the host: the store is private (directories 0700, files 0600), the native
// module is never mapped from a file a non-root user could have written, the log is bounded,
// a lock wait is bounded (code 11, "try again later"), and no external command goes through a
// shell.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, PIER, ROOT, TestWorld } from './cni-harness.ts';
import { callAsync, keepLog } from './reliability-common.ts';
import { waitFor } from './helpers.ts';

/** A file-backed mapping of a process: the path (without " (deleted)"), its inode, and whether it was unlinked. */
interface Mapping {
  path: string;
  inode: number;
  deleted: boolean;
}

/**
 * The file-backed mappings of `pid` while it holds `lock` open, or undefined when it does not
 * (not there yet, or gone). Each maps line: address perms offset dev inode path.
 */
function lockWaitMappings(pid: number, lock: string): Mapping[] | undefined {
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    if (!fds.includes(lock)) return undefined;
    const seen = new Map<string, Mapping>();
    for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      const raw = f.slice(5).join(' ');
      if (!raw.startsWith('/')) continue;
      const deleted = raw.endsWith(' (deleted)');
      const path = deleted ? raw.slice(0, -' (deleted)'.length) : raw;
      seen.set(`${path}#${f[4]}`, { path, inode: Number(f[4]), deleted });
    }
    return [...seen.values()];
  } catch {
    return undefined;
  }
}

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
    const holder = spawn('flock', ['-o', lock, 'sleep', '300'], { stdio: 'ignore' });
    children.push(holder);
    // flock runs its command once it holds the lock: its child is the sign (no guessing how long).
    let sleeper = 0;
    await waitFor(() => {
      sleeper = Number(readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
      return sleeper > 0;
    }, 'flock to take the store lock');
    const t0 = Date.now();
    const child = w.spawn({ command: 'ADD', containerId: 'm3', netns: w.netnsPath(pod), ifname: 'eth2' }, conf);
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    let closed = false;
    const done = new Promise<number | null>((r) => child.on('close', (code) => {
      closed = true;
      r(code);
    }));
    // While it waits on the lock (it has the lock file open, and so koffi loaded: flock goes
    // through it), which files back its executable mappings? The last look before it gives up.
    let maps: Mapping[] | undefined;
    while (!closed) {
      const look = lockWaitMappings(child.pid!, lock);
      if (look) maps = look;
      await new Promise((r) => setTimeout(r, 50));
    }
    const code = await done;
    const took = Date.now() - t0;
    process.kill(holder.pid!, 'SIGKILL');
    process.kill(sleeper, 'SIGKILL');

    assert.equal(code, 1);
    const e = JSON.parse(stdout);
    assert.equal(e.code, 11, stdout);
    assert.match(e.msg, /try again later/);
    assert.match(e.msg, /for more than 10000 ms/);
    // A lower bound only: it waited out its bound (a loaded machine only makes it longer).
    assert.ok(took >= 10_000, `gave up after ${took} ms, before its 10 s bound`);

    assert.ok(maps, 'never saw the plugin waiting on the lock');
    assert.ok(maps.length > 0);
    const koffi = maps.filter((m) => /koffi/.test(m.path) || m.deleted);
    assert.ok(koffi.length >= 1, `no koffi mapping found in ${maps.map((m) => m.path).join(', ')}`);
    for (const m of koffi) {
      if (m.deleted) {
        // Only an O_TMPFILE inode is fine: it never had a name, so nobody could open or replace
        // it. The kernel names such an inode `#<inode number>` in its directory; a file that
        // was written under a name and unlinked later keeps that name, and fails here.
        assert.match(m.path, /^\/(run|var\/lib|tmp)\/#\d+$/, `native module mapped from a deleted file ${m.path}`);
        assert.equal(m.path.slice(m.path.lastIndexOf('#') + 1), String(m.inode), `${m.path} is not an unnamed inode of its own`);
        continue;
      }
      // The copy kept on tmpfs between runs, or the verified fallback under /var/lib.
      const match = /^(\/run\/pier|\/var\/lib\/pier)\/native\/koffi-[0-9a-f]{32}\.node$/.exec(m.path);
      assert.ok(match, `native module mapped from ${m.path}`);
      for (const d of [`${match[1]}/native`, match[1]]) {
        const dir = statSync(d);
        assert.equal(dir.uid, 0, `${d} is root's`);
        assert.equal(dir.mode & 0o022, 0, `${d} is not group/world-writable`);
      }
      const file = statSync(m.path);
      assert.equal(file.uid, 0);
      assert.equal(file.mode & 0o222, 0, `${m.path} is read-only`);
      assert.equal(file.ino, m.inode, `${m.path} was replaced since it was mapped`);
    }
    // Nothing mapped from a named file in a world-writable place, deleted or not (an unnamed
    // O_TMPFILE inode in /tmp was checked above). The executable itself is wherever the
    // checkout is: not Pier's choice.
    for (const m of maps) {
      if (m.path === PIER || (m.deleted && /\/#\d+$/.test(m.path))) continue;
      assert.ok(!/^\/(tmp|var\/tmp|dev\/shm)\//.test(m.path), `mapped from world-writable ${m.path}${m.deleted ? ' (deleted)' : ''}`);
    }
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

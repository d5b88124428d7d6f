import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { lockFile, pollPause, unlockFile } from './file-lock.ts';
import { DiskStore } from './disk-store.ts';
import { allocate } from './allocator.ts';
import { parseIpamConfig } from './config.ts';
import { CniError } from '../cni/errors.ts';

const root = fs.mkdtempSync(`${os.tmpdir()}/pier-lock-`);
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs.rmSync(root, { recursive: true, force: true });
});
const libc = new URL('../netlink/libc.ts', import.meta.url).href;

/** A child process that takes the lock on path, says "locked", and holds it for holdMs. */
async function holdInChild(path: string, holdMs: number): Promise<ChildProcess> {
  const code = `
    import * as fs from 'node:fs';
    import { flock, LOCK_EX } from ${JSON.stringify(libc)};
    const fd = fs.openSync(${JSON.stringify(path)}, 'a', 0o600);
    flock(fd, LOCK_EX);
    process.stdout.write('locked\\n');
    setTimeout(() => process.exit(0), ${holdMs});
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const [chunk] = await once(child.stdout!, 'data');
  assert.equal(String(chunk).trim(), 'locked');
  return child;
}

test('a second open file description in the same process conflicts: bounded wait, then code 11', () => {
  const path = `${root}/in-process.lock`;
  const held = lockFile(path);
  try {
    const t0 = Date.now();
    assert.throws(() => lockFile(path, 200), (e: unknown) => {
      assert.ok(e instanceof CniError);
      assert.equal(e.code, 11);
      assert.match(e.message, /^lock is busy: .*in-process\.lock has been locked by another Pier process for more than 200 ms: try again later$/);
      assert.equal(e.details, path);
      return true;
    });
    assert.throws(() => lockFile(path, 10, 'nft lock'), /^CniError: nft lock is busy: /);
    // It waited out its bound before giving up (a lower bound: a loaded machine only adds to it;
    // that it gives up at all is what makes the wait bounded).
    const waited = Date.now() - t0;
    assert.ok(waited >= 200, `gave up after ${waited} ms, before its 200 ms bound`);
  } finally {
    unlockFile(held, path);
  }
  unlockFile(lockFile(path, 0), path); // free again: immediately available
});

test('a lock held by another process times out with code 11 through the store', async () => {
  const dataDir = `${root}/store`;
  const store = new DiskStore(dataDir, 'net', { lockTimeoutMs: 300 });
  store.withLock(() => undefined); // creates the directories and the lock file
  const child = await holdInChild(`${dataDir}/net/lock`, 60_000);
  const cfg = parseIpamConfig({ subnet: '10.0.0.0/24' }, 'net');
  assert.throws(
    () => allocate(store, cfg, { containerID: 'c1', ifname: 'eth0' }, [], { bootId: 'b', netnsExists: () => true }),
    (e: unknown) => e instanceof CniError && e.code === 11 && /^IPAM store of network net is busy: /.test(e.message),
  );
  assert.equal(fs.existsSync(`${dataDir}/net/10.0.0.2`), false);
  child.kill('SIGKILL');
  await once(child, 'exit');
  // The kernel drops a dead holder's lock: the same store works now.
  const r = allocate(store, cfg, { containerID: 'c1', ifname: 'eth0' }, [], { bootId: 'b', netnsExists: () => true });
  assert.equal(r.record.ips[0].address, '10.0.0.2/24');
});

/** The state letter of a process's main thread (R running, S sleeping, D disk, Z zombie...). */
function threadState(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'gone';
  }
}

test('a waiter gets the lock once the holder lets go, and not before', async () => {
  const path = `${root}/handover.lock`;
  const released = `${root}/handover.released`;
  // This process holds the lock; a child waits for it with lockFile and reports whether the
  // holder had already let go (it writes `released` just before unlocking) when it got it.
  const held = lockFile(path);
  const code = `
    import * as fs from 'node:fs';
    import { lockFile, unlockFile } from ${JSON.stringify(new URL('./file-lock.ts', import.meta.url).href)};
    process.stdout.write('trying\\n');
    const fd = lockFile(${JSON.stringify(path)}, 120_000);
    process.stdout.write(fs.existsSync(${JSON.stringify(released)}) ? 'got it after the release\\n' : 'got it while it was held\\n');
    unlockFile(fd, ${JSON.stringify(path)});
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  const exited = once(child, 'exit');
  try {
    // Once it said "trying", the child's main thread only sleeps inside lockFile's poll: wait
    // for that (no clock involved), or for it to come back with an answer it must not have.
    const deadline = Date.now() + 60_000;
    while (!(out.includes('trying') && threadState(child.pid!) === 'S') && !out.includes('got it')) {
      assert.ok(Date.now() < deadline, `the waiter never started waiting: ${JSON.stringify(out)}, state ${threadState(child.pid!)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(!out.includes('got it'), `the waiter did not wait: ${out}`);
    fs.writeFileSync(released, '');
  } finally {
    unlockFile(held, path);
  }
  await exited;
  assert.equal(child.exitCode, 0);
  assert.equal(out, 'trying\ngot it after the release\n');
});

test('pollPause: never more than 2 ms (no oversleeping the hand-over); old waiters poll more often', () => {
  assert.equal(pollPause(0), 2);
  assert.ok(pollPause(500) < pollPause(100));
  assert.equal(pollPause(5_000), 1);
});

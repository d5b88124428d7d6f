// The disk store's hot path: what one ADD, DEL or record update costs in file system calls
// (bounded, whatever the store holds), and that a process killed at the wrong moment still
// leaves a store the next call repairs. The kills are an injected fs that dies at one call.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { allocate, release } from './allocator.ts';
import { parseIpamConfig } from './config.ts';
import { DiskStore } from './disk-store.ts';
import type { Fs } from './fs-atomic.ts';
import { updateAttachment } from './ipam.ts';
import { CniError } from '../cni/errors.ts';

const root = fs.mkdtempSync(`${os.tmpdir()}/pier-disk-cost-`);
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
function fresh(): string {
  return `${root}/d${n++}`;
}
const opts = { bootId: 'b1', netnsExists: () => true };
const v4 = parseIpamConfig({ ranges: [[{ subnet: '10.23.0.0/22' }]] }, 'net');
const dual = parseIpamConfig({ ranges: [[{ subnet: '10.22.0.0/24' }], [{ subnet: 'fd00:22::/64' }]] }, 'net');
const key = (containerID: string) => ({ containerID, ifname: 'eth0' });

type Call = { op: string; path?: string };
const FS_OPS = ['openSync', 'readSync', 'writeSync', 'closeSync', 'renameSync', 'unlinkSync', 'linkSync', 'readFileSync', 'readdirSync', 'mkdirSync', 'chmodSync', 'statSync', 'ftruncateSync'] as const;

/**
 * The real fs, recording every call. With `dieAt`, the process "dies" at the first call it says
 * yes to: that call and every later one throw, so nothing more reaches the disk (a SIGKILL).
 */
function tracingFs(dieAt?: (c: Call) => boolean): { fs: Fs; calls: Call[]; dead: () => boolean } {
  const calls: Call[] = [];
  let dead = false;
  const wrapped: Record<string, unknown> = {};
  for (const op of FS_OPS) {
    const real = (fs as unknown as Record<string, (...a: unknown[]) => unknown>)[op];
    wrapped[op] = (...args: unknown[]) => {
      const call = { op, ...(typeof args[0] === 'string' && { path: args[0] }) };
      calls.push(call);
      if (!dead && dieAt?.(call)) dead = true;
      if (dead) throw Object.assign(new Error(`killed at ${op}`), { code: 'EKILLED' });
      return real(...args);
    };
  }
  return { fs: wrapped as unknown as Fs, calls, dead: () => dead };
}

/** Files a call sequence opened (open and readFile), and directories it listed. */
function cost(calls: Call[]) {
  return {
    opened: calls.filter((c) => c.op === 'openSync' || c.op === 'readFileSync').length,
    listed: calls.filter((c) => c.op === 'readdirSync').length,
  };
}

/** A store holding `count` attachments, made through the real fs. */
function storeWith(count: number): string {
  const dataDir = fresh();
  const store = new DiskStore(dataDir, 'net');
  for (let i = 0; i < count; i++) allocate(store, v4, { ...key(`pre${i}`), netnsPath: '/run/netns/p' }, [], opts);
  if (count === 0) {
    // Same history as the others: the store exists and this boot was swept.
    allocate(store, v4, key('first'), [], opts);
    release(store, 'first', 'eth0');
  }
  return dataDir;
}

test('ADD, record update and DEL cost the same few files with 0 or 300 attachments, and list no directory', () => {
  const measured = [0, 300].map((count) => {
    const dataDir = storeWith(count);
    const t = tracingFs();
    const store = new DiskStore(dataDir, 'net', { fs: t.fs });
    const add = allocate(store, v4, { ...key('new'), netnsPath: '/run/netns/new' }, [], opts);
    assert.deepEqual(add.warnings, []);
    const addCost = cost(t.calls.splice(0));
    const deps = { openStore: () => store, bootId: 'b1', netnsExists: () => true };
    updateAttachment(deps, { dataDir, network: 'net' }, key('new'), { hostVeth: 'veth12345678' });
    const updateCost = cost(t.calls.splice(0));
    release(store, 'new', 'eth0');
    const delCost = cost(t.calls.splice(0));
    release(store, 'new', 'eth0'); // containerd's second DEL: nothing left
    const del2Cost = cost(t.calls.splice(0));
    return { addCost, updateCost, delCost, del2Cost };
  });
  assert.deepEqual(measured[1], measured[0], 'the same cost at 300 attachments as at 0');
  const m = measured[1];
  for (const c of Object.values(m)) assert.equal(c.listed, 0, 'no directory is listed');
  // ADD: its record (absent), last_reserved_ip, the candidate IP file, the record's temp file,
  // the IP file's temp file, last_reserved_ip again (written).
  assert.ok(m.addCost.opened <= 6, `ADD opened ${m.addCost.opened} files`);
  assert.ok(m.updateCost.opened <= 2, `the record update opened ${m.updateCost.opened} files`);
  assert.ok(m.delCost.opened <= 3, `DEL opened ${m.delCost.opened} files`);
  assert.ok(m.del2Cost.opened <= 1, `a second DEL opened ${m.del2Cost.opened} files`);
});

test('the boot sweep lists the store once per boot, not on every ADD', () => {
  const dataDir = storeWith(20);
  const t = tracingFs();
  const store = new DiskStore(dataDir, 'net', { fs: t.fs });
  allocate(store, v4, key('a'), [], opts);
  assert.equal(cost(t.calls.splice(0)).listed, 0, 'same boot: no sweep');
  const next = { ...opts, bootId: 'b2' };
  allocate(store, v4, key('b'), [], next);
  assert.ok(cost(t.calls.splice(0)).listed > 0, 'a new boot: repair and sweep');
  allocate(store, v4, key('c'), [], next);
  assert.equal(cost(t.calls.splice(0)).listed, 0, 'then not again in that boot');
});

test('a kill between the record write and the IP file: the next ADD, or DEL, repairs first', () => {
  for (const next of ['ADD', 'DEL'] as const) {
    const dataDir = fresh();
    allocate(new DiskStore(dataDir, 'net'), dual, key('c1'), [], opts); // 10.22.0.2, fd00:22::2
    const dir = `${dataDir}/net`;
    // c2's ADD dies when it links its first IP file into place: its record is on disk already.
    const t = tracingFs((c) => c.op === 'linkSync');
    assert.throws(() => allocate(new DiskStore(dataDir, 'net', { fs: t.fs }), dual, key('c2'), [], opts), CniError);
    assert.ok(t.dead());
    assert.ok(fs.existsSync(`${dir}/attachments/c2_eth0.json`), 'the kill left the record');
    assert.ok(!fs.existsSync(`${dir}/10.22.0.3`), 'and no IP file');

    // The dead process could not clean up the temp file it was linking from, either.
    const tmp = fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));
    assert.equal(tmp.length, 1);

    const store = new DiskStore(dataDir, 'net');
    const out = next === 'ADD' ? allocate(store, dual, key('c3'), [], opts) : release(store, 'c9', 'eth0');
    assert.deepEqual(out.warnings, [
      `removed ${dir}/${tmp[0]}: a temp file left by an interrupted write`,
      'released c2/eth0: an interrupted ADD or DEL left 10.22.0.3/24, fd00:22::3/64 unreserved',
    ]);
    assert.equal(store.withLock(() => store.get(key('c2'))), undefined);
    assert.deepEqual(new DiskStore(dataDir, 'net').list().map((r) => r.containerID).sort(), next === 'ADD' ? ['c1', 'c3'] : ['c1']);
    // Repaired once: the store is clean again and the following ADD lists nothing.
    const after = tracingFs();
    allocate(new DiskStore(dataDir, 'net', { fs: after.fs }), dual, key('c4'), [], opts);
    assert.equal(cost(after.calls).listed, 0);
  }
});

test('a kill in the middle of a release (one IP file gone, the record left) is repaired by the next ADD', () => {
  const dataDir = fresh();
  allocate(new DiskStore(dataDir, 'net'), dual, key('c1'), [], opts);
  const t = tracingFs((c) => c.op === 'unlinkSync' && (c.path ?? '').endsWith('/fd00_22__2'));
  assert.throws(() => release(new DiskStore(dataDir, 'net', { fs: t.fs }), 'c1', 'eth0'), CniError);
  assert.ok(!fs.existsSync(`${dataDir}/net/10.22.0.2`) && fs.existsSync(`${dataDir}/net/attachments/c1_eth0.json`));
  const r = allocate(new DiskStore(dataDir, 'net'), dual, key('c2'), [], opts);
  assert.deepEqual(r.warnings, ['released c1/eth0: an interrupted ADD or DEL left 10.22.0.2/24 unreserved']);
  assert.deepEqual(fs.readdirSync(`${dataDir}/net/attachments`), ['c2_eth0.json']);
  assert.ok(!fs.existsSync(`${dataDir}/net/fd00_22__2`), 'the other address was freed too');
});

test('a kill while the record is rewritten leaves the old record and a temp file the next ADD removes', () => {
  const dataDir = fresh();
  allocate(new DiskStore(dataDir, 'net'), v4, key('c1'), [], opts);
  const t = tracingFs((c) => c.op === 'renameSync');
  const dying = new DiskStore(dataDir, 'net', { fs: t.fs });
  const deps = { openStore: () => dying, bootId: 'b1', netnsExists: () => true };
  assert.throws(() => updateAttachment(deps, { dataDir, network: 'net' }, key('c1'), { hostVeth: 'vethX' }), CniError);
  const store = new DiskStore(dataDir, 'net');
  assert.equal(store.withLock(() => store.get(key('c1')))?.hostVeth, undefined, 'the old record, whole');
  const r = allocate(store, v4, key('c2'), [], opts);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0], /^removed .*\/attachments\/\.c1_eth0\.json\.tmp-\d+-[0-9a-f]+: a temp file left by an interrupted write$/);
  assert.deepEqual(fs.readdirSync(`${dataDir}/net/attachments`).sort(), ['c1_eth0.json', 'c2_eth0.json']);
});

test('the state line: a lock file from an older Pier (empty) means repair once, then clean', () => {
  const dataDir = storeWith(3);
  const lock = `${dataDir}/net/lock`;
  assert.match(fs.readFileSync(lock, 'latin1'), /^pier-ipam-state 1 boot=b1 clean {2,}\n$/);
  assert.equal(fs.statSync(lock).size, 128);
  fs.writeFileSync(`${dataDir}/net/10.23.0.200`, 'ghost\r\neth0'); // an older Pier's leftover
  fs.truncateSync(lock, 0);
  const store = new DiskStore(dataDir, 'net');
  const r = release(store, 'none', 'eth0');
  assert.deepEqual(r.warnings, ['released 10.23.0.200: reserved to ghost/eth0, which has no record']);
  assert.match(fs.readFileSync(lock, 'latin1'), /^pier-ipam-state 1 boot=- clean +\n$/, 'repaired; no boot swept yet');
  allocate(store, v4, key('a'), [], opts);
  assert.match(fs.readFileSync(lock, 'latin1'), /^pier-ipam-state 1 boot=b1 clean +\n$/);
});

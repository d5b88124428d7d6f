import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { allocate, gc, release } from './allocator.ts';
import { parseIpamConfig } from './config.ts';
import { DiskStore } from './disk-store.ts';
import type { Fs } from './fs-atomic.ts';
import { CniError } from '../cni/errors.ts';

const root = fs.mkdtempSync(`${os.tmpdir()}/pier-disk-store-`);
after(() => fs.rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh dataDir per test, so tests do not see each other's files. */
function fresh(): string {
  return `${root}/d${n++}`;
}
const opts = { bootId: 'b1', netnsExists: () => true };
const dual = parseIpamConfig({ ranges: [[{ subnet: '10.22.0.0/24' }], [{ subnet: 'fd00:22::/64' }]] }, 'net');
const v4 = parseIpamConfig({ ranges: [[{ subnet: '10.22.0.0/24' }]] }, 'net');
const key = { containerID: 'c1', ifname: 'eth0' };
const mode = (p: string) => fs.statSync(p).mode & 0o777;
const code = (n: number, re?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CniError, String(e));
  assert.equal(e.code, n, e.message);
  if (re) assert.match(e.message, re);
  return true;
};

test('layout and modes: network dir 0700, files 0600, host-local style IP files', () => {
  const dataDir = fresh();
  const store = new DiskStore(dataDir, 'net');
  assert.deepEqual(store.list(), [], 'reading a store that does not exist yet creates nothing');
  assert.equal(fs.existsSync(dataDir), false);
  allocate(store, dual, { ...key, bridge: 'pier0' }, [], opts);
  const dir = `${dataDir}/net`;
  assert.deepEqual(fs.readdirSync(dir).sort(), ['10.22.0.2', 'attachments', 'fd00_22__2', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  assert.deepEqual(fs.readdirSync(`${dir}/attachments`), ['c1_eth0.json']);
  assert.equal(mode(dir), 0o700);
  assert.equal(mode(`${dir}/attachments`), 0o700);
  for (const f of ['10.22.0.2', 'fd00_22__2', 'last_reserved_ip.0', 'lock', 'attachments/c1_eth0.json']) assert.equal(mode(`${dir}/${f}`), 0o600, f);
  assert.equal(fs.readFileSync(`${dir}/10.22.0.2`, 'utf8'), 'c1\r\neth0');
  assert.equal(fs.readFileSync(`${dir}/last_reserved_ip.1`, 'utf8'), 'fd00:22::2');
  const rec = JSON.parse(fs.readFileSync(`${dir}/attachments/c1_eth0.json`, 'utf8'));
  assert.deepEqual(rec.ips, [
    { address: '10.22.0.2/24', gateway: '10.22.0.1', rangeSet: 0 },
    { address: 'fd00:22::2/64', gateway: 'fd00:22::1', rangeSet: 1 },
  ]);
  assert.equal(rec.bridge, 'pier0');
  assert.deepEqual(new DiskStore(dataDir, 'net').get(key), rec);

  release(store, 'c1', 'eth0');
  assert.deepEqual(fs.readdirSync(dir).sort(), ['attachments', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
  assert.deepEqual(fs.readdirSync(`${dir}/attachments`), []);
});

test('the round robin position survives across processes (it is on disk)', () => {
  const dataDir = fresh();
  allocate(new DiskStore(dataDir, 'net'), v4, key, [], opts);
  release(new DiskStore(dataDir, 'net'), 'c1', 'eth0');
  const r = allocate(new DiskStore(dataDir, 'net'), v4, key, [], opts);
  assert.equal(r.record.ips[0].address, '10.22.0.3/24');
});

test('keys are validated before they become file names (code 4)', () => {
  const store = new DiskStore(fresh(), 'net');
  for (const bad of [{ containerID: '../../etc', ifname: 'eth0' }, { containerID: 'c', ifname: '../x' }, { containerID: 'c', ifname: '..' }]) {
    assert.throws(() => store.get(bad), code(4));
    assert.throws(() => allocate(store, v4, bad, [], opts), code(4));
  }
  assert.throws(() => new DiskStore(fresh(), '../net'), code(7));
  assert.throws(() => new DiskStore('relative', 'net'), code(7));
});

test('record writes are atomic: a crash mid-write leaves the old record and a temp file repair removes', () => {
  const dataDir = fresh();
  const store = new DiskStore(dataDir, 'net');
  const { record } = allocate(store, v4, key, [], opts);
  const path = `${dataDir}/net/attachments/c1_eth0.json`;
  // What a crash between writing the temp file and rename(2) leaves:
  fs.writeFileSync(`${dataDir}/net/attachments/.c1_eth0.json.tmp-99999-deadbeef`, '{"containerID": "c1", "if');
  assert.deepEqual(store.get(key), record, 'the half-written temp file is not the record');
  assert.deepEqual(store.list(), [record]);
  const warnings = store.withLock(() => store.repair());
  assert.deepEqual(warnings, [`removed ${dataDir}/net/attachments/.c1_eth0.json.tmp-99999-deadbeef: a temp file left by an interrupted write`]);
  assert.deepEqual(fs.readdirSync(`${dataDir}/net/attachments`), ['c1_eth0.json']);

  // A failing rename (the crash point inside writeFileAtomic) keeps the old content, no temp left.
  const failingRename: Fs = { ...fs, renameSync: () => { throw Object.assign(new Error('EIO'), { code: 'EIO' }); } };
  const broken = new DiskStore(dataDir, 'net', { fs: failingRename });
  assert.throws(() => broken.withLock(() => broken.save({ ...record, hostVeth: 'vethX' })), code(5, /rename .*c1_eth0\.json: EIO/));
  assert.deepEqual(JSON.parse(fs.readFileSync(path, 'utf8')), record);
  assert.deepEqual(fs.readdirSync(`${dataDir}/net/attachments`), ['c1_eth0.json']);

  store.withLock(() => store.save({ ...record, hostVeth: 'vethX' }));
  assert.equal(store.get(key)?.hostVeth, 'vethX');
});

test('repair: an IP file without a record is released', () => {
  const dataDir = fresh();
  const store = new DiskStore(dataDir, 'net');
  allocate(store, v4, key, [], opts);
  fs.writeFileSync(`${dataDir}/net/10.22.0.77`, 'ghost\r\neth0', { mode: 0o600 });
  const r = allocate(store, v4, { containerID: 'c2', ifname: 'eth0' }, ['10.22.0.77'], opts);
  assert.deepEqual(r.warnings, ['released 10.22.0.77: reserved to ghost/eth0, which has no record']);
  assert.equal(r.record.ips[0].address, '10.22.0.77/24');
  assert.equal(fs.readFileSync(`${dataDir}/net/10.22.0.77`, 'utf8'), 'c2\r\neth0');
});

test('repair: a record whose IP files are missing (crash inside ADD or DEL) is released', () => {
  const dataDir = fresh();
  const store = new DiskStore(dataDir, 'net');
  allocate(store, dual, key, [], opts);
  // Crash after the record and the v4 file were written, before the v6 file:
  fs.unlinkSync(`${dataDir}/net/fd00_22__2`);
  const warnings = store.withLock(() => store.repair());
  assert.deepEqual(warnings, ['released c1/eth0: an interrupted ADD or DEL left fd00:22::2/64 unreserved']);
  assert.equal(store.get(key), undefined);
  assert.equal(fs.existsSync(`${dataDir}/net/10.22.0.2`), false, 'its other IP file went too');
  // A fresh ADD of the same key now works (the runtime retries after the failed ADD).
  assert.equal(allocate(store, dual, key, [], opts).record.ips.length, 2);
});

test('torn or foreign files never crash the plugin: treated as stale, with warnings', () => {
  const dataDir = fresh();
  const store = new DiskStore(dataDir, 'net');
  allocate(store, v4, { ...key, netnsPath: '/run/netns/p1' }, [], opts); // 10.22.0.2, its netns stays
  allocate(store, v4, { containerID: 'c2', ifname: 'eth0' }, [], opts); // 10.22.0.3
  const dir = `${dataDir}/net`;
  fs.writeFileSync(`${dir}/attachments/c2_eth0.json`, '{"containerID":"c2","ifna'); // torn record
  fs.writeFileSync(`${dir}/10.22.0.9`, 'half'); // torn IP file
  fs.writeFileSync(`${dir}/last_reserved_ip.0`, 'garbage');
  fs.writeFileSync(`${dir}/attachments/c1_eth1.json`, JSON.stringify({ ...store.get(key), ifname: 'eth2' })); // wrong name
  fs.writeFileSync(`${dir}/README`, 'not ours, left alone');
  assert.deepEqual(store.list().map((r) => r.containerID), ['c1'], 'list skips what it cannot read');
  // Files torn like this come from a power cut, which changes the boot id: the next ADD repairs.
  const r = allocate(store, v4, { containerID: 'c3', ifname: 'eth0' }, [], { ...opts, bootId: 'b2' });
  assert.deepEqual(r.warnings.sort(), [
    `released 10.22.0.3: reserved to c2/eth0, which has no record`,
    `released 10.22.0.9: ${dir}/10.22.0.9 is unreadable (torn or corrupt); treated as stale`,
    `removed ${dir}/attachments/c1_eth1.json: is stored under the wrong name; treated as stale`,
    `removed ${dir}/attachments/c2_eth0.json: not valid JSON (torn or corrupt); treated as stale`,
    `removed ${dir}/last_reserved_ip.0: not an IP address; round robin restarts`,
  ]);
  assert.equal(r.record.ips[0].address, '10.22.0.3/24', 'the walk restarted at the first free address');
  assert.equal(fs.readFileSync(`${dir}/README`, 'utf8'), 'not ours, left alone');
  assert.deepEqual(store.list().map((x) => x.containerID).sort(), ['c1', 'c3']);
});

/**
 * An fs whose calls `ops` fail with errno `code` once `armed` is set (and `when`, if given,
 * says yes to the call's arguments).
 */
function failingFs(errno: string, ops: (keyof Fs)[], when?: (op: keyof Fs, args: unknown[]) => boolean): { fs: Fs; armed: { on: boolean } } {
  const armed = { on: false };
  const wrapped: Record<string, unknown> = { ...fs };
  for (const op of ops) {
    const real = (fs as unknown as Record<string, (...a: unknown[]) => unknown>)[op];
    wrapped[op] = (...args: unknown[]) => {
      if (armed.on && (!when || when(op, args))) throw Object.assign(new Error(`${errno}: ${op}`), { code: errno });
      return real(...args);
    };
  }
  return { fs: wrapped as unknown as Fs, armed };
}

function listTree(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true }).map(String).sort();
}

test('a full disk (ENOSPC) is CniError 5 naming the path and leaves no partial state', () => {
  const dataDir = fresh();
  // A full disk fails the writes that need new blocks; the state line is rewritten in place.
  const { fs: full, armed } = failingFs('ENOSPC', ['writeSync'], (_op, args) => args[4] !== 0);
  const store = new DiskStore(dataDir, 'net', { fs: full });
  allocate(store, v4, key, [], opts);
  const before = listTree(`${dataDir}/net`);
  armed.on = true;
  assert.throws(
    () => allocate(store, dual, { containerID: 'c2', ifname: 'eth0' }, [], opts),
    (e: unknown) => {
      assert.ok(e instanceof CniError);
      assert.equal(e.code, 5);
      assert.match(e.message, /write .*\/net\/attachments\/c2_eth0\.json: ENOSPC \(no space left on device\)/);
      assert.ok(e.details.startsWith(`${dataDir}/net/`), e.details);
      return true;
    },
  );
  assert.deepEqual(listTree(`${dataDir}/net`), before);
});

test('ENOSPC while creating an IP file rolls back the record already written', () => {
  const dataDir = fresh();
  const { fs: full, armed } = failingFs('ENOSPC', ['linkSync']);
  const store = new DiskStore(dataDir, 'net', { fs: full });
  allocate(store, v4, key, [], opts);
  const before = listTree(`${dataDir}/net`);
  armed.on = true;
  assert.throws(() => allocate(store, v4, { containerID: 'c2', ifname: 'eth0' }, [], opts), code(5, /link .*\/net\/10\.22\.0\.3: ENOSPC/));
  assert.deepEqual(listTree(`${dataDir}/net`), before);
});

test('a read-only store (EROFS) is CniError 5 and creates nothing', () => {
  const dataDir = fresh();
  const { fs: ro, armed } = failingFs('EROFS', ['mkdirSync', 'openSync', 'linkSync', 'renameSync', 'unlinkSync']);
  armed.on = true;
  const store = new DiskStore(dataDir, 'net', { fs: ro });
  assert.throws(() => allocate(store, v4, key, [], opts), code(5, /mkdir .*: EROFS \(read-only file system\)/));
  assert.equal(fs.existsSync(dataDir), false);
  assert.match(store.probeWritable() ?? '', /EROFS/);
});

test('DEL, GC and reading a record on a store that does not exist create nothing', () => {
  const dataDir = `${fresh()}/not-yet`;
  const store = new DiskStore(dataDir, 'net');
  assert.deepEqual(release(store, 'c1', 'eth0'), { warnings: [], released: [] });
  assert.deepEqual(gc(store, []), { warnings: [], released: [] });
  assert.equal(store.withLock(() => 'locked', () => 'missing'), 'missing');
  assert.equal(fs.existsSync(dataDir), false);
});

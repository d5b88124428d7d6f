// Full disk and read-only store: the IPAM dataDir on a 64 KiB tmpfs of this test's own, filled
// to the last byte, then remounted read-only. ADD fails with a clear I/O error (code 5) and
// leaves nothing half-made; reservations made before stay intact; DEL still releases.
//
// Read-only store, DEL: DEL cannot delete the reservation files. It still removes the veth and
// the NAT entries (they are what breaks the node if left: a stale masquerade or hostPort
// element, a dangling bridge port) and then reports code 5, so the runtime keeps retrying the
// DEL. Succeeding instead would make the runtime forget the attachment while the store still
// holds its address: a leak nobody would ever retry. Once the store is writable again, the
// retried DEL releases the address.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, writeSync, readdirSync } from 'node:fs';
import { ensureBuilt, TestWorld } from './cni-harness.ts';
import { hostVeths, keepLog, nftElements, pierLs, storeFiles } from './reliability-common.ts';
import { ipJson } from './helpers.ts';

function mount(args: string[]): void {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
}

/** Writes a filler file until the file system says ENOSPC. */
function fill(path: string): number {
  const fd = openSync(path, 'w', 0o600);
  const chunk = Buffer.alloc(4096, 0x78);
  let n = 0;
  try {
    for (;;) n += writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // The last partial page: byte by byte.
  try {
    for (;;) n += writeSync(fd, chunk, 0, 1);
  } catch {
    // full
  }
  closeSync(fd);
  return n;
}

describe('full disk and read-only store', () => {
  let w: TestWorld;
  let conf: ReturnType<TestWorld['conf']>;
  let mnt: string;
  let pod: string;
  let mounted = false;

  before(() => {
    ensureBuilt();
    w = new TestWorld();
    mnt = `${w.dataDir}/small`;
    mkdirSync(mnt);
    mount(['-t', 'tmpfs', '-o', 'size=64k,mode=0700', `${w.prefix}-tmpfs`, mnt]);
    mounted = true;
    // Registered after the world's own steps, so it runs first: unmount before the rm -r.
    w.cleanup.add(() => {
      spawnSync('umount', ['-l', mnt]);
    });
    conf = w.conf('1.0.0', { subnet: '10.233.0.0/24', extra: { ipMasq: true }, ipam: { dataDir: `${mnt}/store` } });
    pod = w.addPod();
  });

  after(() => {
    keepLog(w, 'disk');
    w?.cleanup.runAll();
    if (mounted) assert.equal(spawnSync('mountpoint', ['-q', mnt]).status, 1, 'the tmpfs is unmounted');
  });

  const add = (cid: string, ifname: string) => w.call({ command: 'ADD', containerId: cid, netns: w.netnsPath(pod), ifname }, conf);
  const del = (cid: string, ifname: string, netns = true) =>
    w.call({ command: 'DEL', containerId: cid, ifname, ...(netns && { netns: w.netnsPath(pod) }) }, conf);
  const state = () => ({
    store: storeFiles(`${mnt}/store`, conf.name),
    ports: hostVeths(w, conf.bridge).ports.length,
    veths: hostVeths(w, conf.bridge).veths.length,
    podLinks: ipJson<any[]>(pod, 'link', 'show').map((l) => l.ifname).sort(),
    nft: nftElements(w, conf.nftTable).map((e) => e.comment).sort(),
  });

  it('full disk: ADD fails with code 5 and makes nothing; old reservations stay; DEL releases', () => {
    for (const [cid, ifname] of [['a1', 'eth0'], ['a2', 'eth1']]) {
      const r = add(cid, ifname);
      assert.equal(r.status, 0, r.stdout);
    }
    const before = state();
    assert.equal(before.store.ips.length, 2);
    const bytes = fill(`${mnt}/filler`);
    assert.ok(bytes > 0, 'the filler took the rest of the tmpfs');

    const r = add('a3', 'eth2');
    assert.notEqual(r.status, 0);
    assert.equal(r.json.code, 5, r.stdout);
    assert.match(r.json.msg, /ENOSPC|no space left/i);
    assert.deepEqual(state(), before, 'nothing half-made: no veth, no address, no nft element, store as it was');
    assert.equal(pierLs(`${mnt}/store`).length, 2, 'existing reservations intact and readable');

    // DEL only deletes files: it works on a full disk.
    const d = del('a2', 'eth1');
    assert.equal(d.status, 0, d.stdout);
    const after = state();
    assert.equal(after.store.ips.length, 1);
    assert.deepEqual(after.nft, ['a1/eth0']);
    assert.deepEqual(after.podLinks, ['eth0', 'lo']);
  });

  it('read-only store: ADD fails with code 5, reservations stay, DEL removes veth and NAT and reports code 5 until writable', () => {
    spawnSync('rm', ['-f', `${mnt}/filler`]);
    mount(['-o', 'remount,ro', mnt]);
    const before = state();

    const r = add('b1', 'eth3');
    assert.equal(r.json?.code, 5, r.stdout);
    assert.match(r.json.msg, /EROFS|read-only/i);
    assert.deepEqual(state(), before, 'nothing half-made by ADD on a read-only store');
    assert.equal(pierLs(`${mnt}/store`).length, 1, 'existing reservation intact');

    // containerd's second DEL has no netns: the record (readable) names the host veth.
    const d = del('a1', 'eth0', false);
    assert.equal(d.json?.code, 5, `DEL must report that it could not release: ${d.stdout}`);
    const mid = state();
    assert.deepEqual(mid.nft, [], 'NAT entries removed although the store is read-only');
    assert.equal(mid.ports, 0, 'host veth removed although the store is read-only');
    assert.deepEqual(mid.podLinks, ['lo']);
    assert.equal(mid.store.ips.length, 1, 'the address stays reserved: nothing pretends it was released');

    mount(['-o', 'remount,rw', mnt]);
    const again = del('a1', 'eth0', false);
    assert.equal(again.status, 0, again.stdout);
    assert.deepEqual(state().store, { ips: [], records: [], other: [] }, 'the retried DEL released the address');
  });

  it('DEL and GC on a store that does not exist create nothing', () => {
    const missing = `${mnt}/never`;
    const c = { ...conf, ipam: { ...conf.ipam, dataDir: missing } };
    const d = w.call({ command: 'DEL', containerId: 'z1', ifname: 'eth9', netns: w.netnsPath(pod) }, c);
    assert.equal(d.status, 0, d.stdout);
    const g = w.call({ command: 'GC' }, { ...c, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] });
    assert.equal(g.status, 0, g.stdout);
    assert.equal(existsSync(missing), false, `${missing} was created: ${existsSync(missing) ? readdirSync(missing) : ''}`);
  });
});

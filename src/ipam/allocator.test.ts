import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocate, check, gc, release, status } from './allocator.ts';
import { parseIpamConfig } from './config.ts';
import { MemoryStore } from './memory-store.ts';
import { CniError } from '../cni/errors.ts';
import type { AttachmentInit } from './attachment.ts';

const BOOT = 'boot-now';
const opts = { bootId: BOOT, netnsExists: () => true, now: () => new Date('2025-01-02T03:04:05Z') };
const v4 = parseIpamConfig({ ranges: [[{ subnet: '10.22.0.0/29' }]] }, 'net'); // .2-.6, gw .1
const dual = parseIpamConfig({ ranges: [[{ subnet: '10.22.0.0/24' }], [{ subnet: 'fd00:22::/64' }]] }, 'net');

function add(store: MemoryStore, id: string, requested: string[] = [], config = v4, extra: Partial<AttachmentInit> = {}) {
  return allocate(store, config, { containerID: id, ifname: 'eth0', ...extra }, requested, opts);
}
function addrs(r: ReturnType<typeof add>): string[] {
  return r.record.ips.map((i) => i.address);
}
function code(n: number, msg?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof CniError, String(e));
    assert.equal(e.code, n, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  };
}

test('allocates in order from the first address, skipping the gateway, under the lock', () => {
  const s = new MemoryStore();
  const r = add(s, 'c1', [], v4, { bridge: 'pier0', ipMasq: true, netnsPath: '/run/netns/c1' });
  assert.deepEqual(r.record, {
    containerID: 'c1', ifname: 'eth0', network: 'net',
    ips: [{ address: '10.22.0.2/29', gateway: '10.22.0.1', rangeSet: 0 }],
    netnsPath: '/run/netns/c1', portMappings: [], ipMasq: true, bridge: 'pier0',
    bootId: BOOT, createdAt: '2025-01-02T03:04:05.000Z', extra: {},
  });
  assert.equal(s.lockCount, 1);
  assert.deepEqual(s.holderOf('10.22.0.2'), { containerID: 'c1', ifname: 'eth0' });
  assert.equal(s.lastReservedIp(0), '10.22.0.2');
  assert.deepEqual(addrs(add(s, 'c2')), ['10.22.0.3/29']);
});

test('round robin: a released address is not handed out again at once; the walk wraps', () => {
  const s = new MemoryStore();
  assert.deepEqual(addrs(add(s, 'a')), ['10.22.0.2/29']);
  release(s, 'a', 'eth0');
  assert.deepEqual(addrs(add(s, 'b')), ['10.22.0.3/29'], 'starts after the last reserved, not at the freed .2');
  for (const id of ['c', 'd', 'e']) add(s, id); // .4 .5 .6
  assert.deepEqual(addrs(add(s, 'f')), ['10.22.0.2/29'], 'wrapped to the start');
});

test('a user gateway inside the range is skipped; several ranges in a set are walked in turn', () => {
  const cfg = parseIpamConfig({ ranges: [[{ subnet: '10.0.0.0/29', gateway: '10.0.0.3' }, { subnet: '10.0.1.0/30' }]] }, 'net');
  const s = new MemoryStore();
  const got = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => addrs(add(s, id, [], cfg))[0]);
  assert.deepEqual(got, ['10.0.0.1/29', '10.0.0.2/29', '10.0.0.4/29', '10.0.0.5/29', '10.0.0.6/29', '10.0.1.2/30']);
  assert.throws(() => add(s, 'g', [], cfg), code(100, /^no free address in range set 0 \(10\.0\.0\.1-10\.0\.0\.6, 10\.0\.1\.2-10\.0\.1\.2\)$/));
});

test('dual stack: one address per range set, each with its gateway', () => {
  const s = new MemoryStore();
  const r = add(s, 'c1', [], dual);
  assert.deepEqual(r.record.ips, [
    { address: '10.22.0.2/24', gateway: '10.22.0.1', rangeSet: 0 },
    { address: 'fd00:22::2/64', gateway: 'fd00:22::1', rangeSet: 1 },
  ]);
  assert.equal(s.lastReservedIp(1), 'fd00:22::2');
});

test('requested IPs go to the set containing them; the other sets allocate normally', () => {
  const s = new MemoryStore();
  const r = add(s, 'c1', ['FD00:22::0:99/64'], dual);
  assert.deepEqual(addrs(r), ['10.22.0.2/24', 'fd00:22::99/64']);
  assert.deepEqual(addrs(add(s, 'c2', ['10.22.0.50'], dual)), ['10.22.0.50/24', 'fd00:22::9a/64']);
});

test('requested IPs: taken is Conflict (101), gateway is Conflict, outside all ranges is 7', () => {
  const s = new MemoryStore();
  add(s, 'c1', ['10.22.0.4']);
  assert.throws(() => add(s, 'c2', ['10.22.0.4']), code(101, /10\.22\.0\.4 is already reserved to c1\/eth0/));
  assert.throws(() => add(s, 'c2', ['10.22.0.1']), code(101, /gateway/));
  assert.throws(() => add(s, 'c2', ['10.22.0.7']), code(7, /in no range/));
  assert.throws(() => add(s, 'c2', ['192.168.0.1/24']), code(7, /in no range/));
  assert.throws(() => add(s, 'c2', ['10.22.0.2', '10.22.0.3']), code(7, /both fall in range set 0/));
  assert.throws(() => add(s, 'c2', ['nonsense']), code(7, /not an IP address/));
  assert.equal(s.records.size, 1, 'failed requests leave nothing behind');
  assert.equal(s.reservations.size, 1);
});

test('a second allocation for the same (containerID, ifname) is error 7; another ifname is fine', () => {
  const s = new MemoryStore();
  add(s, 'c1');
  assert.throws(() => add(s, 'c1'), code(7, /c1\/eth0 already has an IP reservation/));
  const r = allocate(s, v4, { containerID: 'c1', ifname: 'net1' }, [], opts);
  assert.deepEqual(addrs(r), ['10.22.0.3/29']);
});

test('exhaustion is code 100 naming the range; nothing half-reserved stays behind', () => {
  const s = new MemoryStore();
  for (const id of ['a', 'b', 'c', 'd', 'e']) add(s, id);
  assert.throws(() => add(s, 'f'), code(100, /^no free address in range set 0 \(10\.22\.0\.2-10\.22\.0\.6\)$/));
  assert.equal(s.records.size, 5);
  // dual stack where only v6 is left: the v4 failure must not leave the v6 half
  const cfg = parseIpamConfig({ ranges: [[{ subnet: 'fd00::/126' }], [{ subnet: '10.0.0.0/30' }]] }, 'net');
  const s2 = new MemoryStore();
  add(s2, 'a', [], cfg);
  assert.throws(() => add(s2, 'b', [], cfg), code(100, /^no free address in range set 1 \(10\.0\.0\.2-10\.0\.0\.2\)$/));
  assert.throws(() => add(s2, 'b', ['fd00::3'], cfg), code(100, /range set 1/));
  assert.equal(s2.records.size, 1);
  assert.equal(s2.reservations.size, 2);
  assert.equal(s2.holderOf('fd00::3'), undefined, 'the free v6 address was not taken by the failed ADD');
});

test('a reserve that loses a race rolls back the record and the other addresses', () => {
  class Racy extends MemoryStore {
    override reserve(key: { containerID: string; ifname: string }, ip: string, set: number): boolean {
      if (ip.includes(':')) {
        this.reservations.set(ip, { containerID: 'intruder', ifname: 'eth0' });
        return false;
      }
      return super.reserve(key, ip, set);
    }
  }
  const s = new Racy();
  assert.throws(() => add(s, 'c1', [], dual), code(101, /reserved by intruder\/eth0 meanwhile/));
  assert.equal(s.get({ containerID: 'c1', ifname: 'eth0' }), undefined);
  assert.equal(s.holderOf('10.22.0.2'), undefined);
});

test('release is idempotent and returns what it released', () => {
  const s = new MemoryStore();
  add(s, 'c1', [], v4, { portMappings: [{ hostPort: 80 }] });
  const first = release(s, 'c1', 'eth0');
  assert.deepEqual(first.released.map((r) => r.portMappings), [[{ hostPort: 80 }]]);
  assert.equal(s.holderOf('10.22.0.2'), undefined);
  assert.deepEqual(release(s, 'c1', 'eth0'), { warnings: [], released: [] });
  assert.deepEqual(release(s, 'never', 'eth0'), { warnings: [], released: [] });
  assert.throws(() => release(s, '../x', 'eth0'), code(4));
});

test('gc releases every attachment not listed and returns them', () => {
  const s = new MemoryStore();
  for (const id of ['a', 'b', 'c']) add(s, id);
  const out = gc(s, [{ containerID: 'b', ifname: 'eth0' }, { containerID: 'zzz', ifname: 'eth0' }]);
  assert.deepEqual(out.released.map((r) => r.containerID).sort(), ['a', 'c']);
  assert.deepEqual(s.list().map((r) => r.containerID), ['b']);
  assert.deepEqual(gc(s, []).released.map((r) => r.containerID), ['b']);
  assert.equal(s.reservations.size, 0);
});

test('records from an earlier boot whose netns is gone are released before allocating', () => {
  const s = new MemoryStore();
  const old = { ...opts, bootId: 'boot-old' };
  allocate(s, v4, { containerID: 'thisboot', ifname: 'eth0', netnsPath: '/run/netns/x' }, [], opts);
  allocate(s, v4, { containerID: 'gone', ifname: 'eth0', netnsPath: '/run/netns/gone' }, [], old);
  allocate(s, v4, { containerID: 'alive', ifname: 'eth0', netnsPath: '/run/netns/alive' }, [], old);
  allocate(s, v4, { containerID: 'nons', ifname: 'eth0' }, [], old);
  const probed: string[] = [];
  const r = allocate(s, v4, { containerID: 'new', ifname: 'eth0' }, [], {
    ...opts,
    netnsExists: (p) => (probed.push(p), p === '/run/netns/alive'),
  });
  assert.deepEqual(r.released.map((x) => x.containerID).sort(), ['gone', 'nons']);
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings.join('\n'), /gone\/eth0 \(10\.22\.0\.3\/29\): recorded in an earlier boot and its netns \/run\/netns\/gone is gone/);
  assert.deepEqual(probed.sort(), ['/run/netns/alive', '/run/netns/gone'], 'this boot\'s records are not probed');
  assert.deepEqual(s.list().map((x) => x.containerID).sort(), ['alive', 'new', 'thisboot']);
});

test('ADD repairs and sweeps only when needed: a new boot, an interrupted change', () => {
  const s = new MemoryStore();
  for (const id of ['a', 'b', 'c']) add(s, id);
  assert.equal(s.repairCount, 1, 'the first ADD of the boot repaired and swept; the others did not');
  release(s, 'b', 'eth0');
  assert.equal(s.repairCount, 1, 'nor does a DEL of a clean store');
  s.interrupted = true;
  add(s, 'd');
  assert.equal(s.repairCount, 2);
  assert.equal(s.interrupted, false, 'a section that returns leaves the store unmarked');
  assert.throws(() => add(s, 'd'), code(7));
  assert.equal(s.interrupted, false, 'a refusal before any change leaves it unmarked too');
});

test('a full range, or a taken requested address, sweeps again: a netns may have gone since', () => {
  const s = new MemoryStore();
  const gone = new Set<string>();
  const o = { ...opts, netnsExists: (p: string) => !gone.has(p) };
  allocate(s, v4, { containerID: 'old', ifname: 'eth0', netnsPath: '/run/netns/old' }, [], { ...o, bootId: 'boot-old' }); // .2
  for (const id of ['a', 'b', 'c', 'd']) allocate(s, v4, { containerID: id, ifname: 'eth0' }, [], o);
  assert.deepEqual(s.list().map((r) => r.containerID).sort(), ['a', 'b', 'c', 'd', 'old'], 'old kept: its netns was there');
  gone.add('/run/netns/old');
  const r = allocate(s, v4, { containerID: 'e', ifname: 'eth0' }, [], o);
  assert.deepEqual(r.released.map((x) => x.containerID), ['old']);
  assert.deepEqual(addrs(r), ['10.22.0.2/29']);
  // Still full after the sweep: code 100 as before, after one sweep only.
  const before = s.repairCount;
  assert.throws(() => allocate(s, v4, { containerID: 'f', ifname: 'eth0' }, [], o), code(100));
  assert.equal(s.repairCount, before + 1);
  // The same for a requested address held by an attachment whose netns went away.
  const s2 = new MemoryStore();
  allocate(s2, v4, { containerID: 'x', ifname: 'eth0', netnsPath: '/run/netns/x' }, [], { ...o, bootId: 'boot-old' }); // .2
  allocate(s2, v4, { containerID: 'y', ifname: 'eth0' }, [], o); // this boot's sweep keeps x
  gone.add('/run/netns/x');
  const z = allocate(s2, v4, { containerID: 'z', ifname: 'eth0' }, ['10.22.0.2'], o);
  assert.deepEqual(addrs(z), ['10.22.0.2/29']);
  assert.deepEqual(z.released.map((x) => x.containerID), ['x']);
});

test('allocate repairs first: a record without its reservations is released', () => {
  const s = new MemoryStore();
  add(s, 'c1');
  s.reservations.delete('10.22.0.2'); // a crash between record write and IP reservation
  s.interrupted = true; // ... leaves the store marked
  const r = add(s, 'c2');
  assert.match(r.warnings[0], /released c1\/eth0: an interrupted ADD or DEL left 10\.22\.0\.2\/29 unreserved/);
  assert.equal(s.get({ containerID: 'c1', ifname: 'eth0' }), undefined);
});

test('check: matches, mismatches, missing', () => {
  const s = new MemoryStore();
  add(s, 'c1', [], dual);
  assert.equal(check(s, 'c1', 'eth0', ['10.22.0.2/24', 'fd00:22:0::2/64']).containerID, 'c1');
  assert.throws(() => check(s, 'c1', 'eth0', ['10.22.0.3/24', 'fd00:22::2/64']), code(103, /not reserved 10\.22\.0\.3.*reserved but not in the result 10\.22\.0\.2/));
  assert.throws(() => check(s, 'c1', 'eth0', ['10.22.0.2/24']), code(103, /fd00:22::2/));
  assert.throws(() => check(s, 'c9', 'eth0', []), code(103, /no IP reservation for c9\/eth0/));
  s.reservations.set('10.22.0.2', { containerID: 'other', ifname: 'eth0' });
  assert.throws(() => check(s, 'c1', 'eth0', ['10.22.0.2/24', 'fd00:22::2/64']), code(103, /reserved to other\/eth0/));
});

test('status: ok, exhausted, not writable', () => {
  const s = new MemoryStore();
  assert.deepEqual(status(s, v4), { ok: true });
  for (const id of ['a', 'b', 'c', 'd', 'e']) add(s, id);
  assert.deepEqual(status(s, v4), { ok: false, reason: 'no free address in range set 0 (10.22.0.2-10.22.0.6)' });
  class ReadOnly extends MemoryStore {
    override probeWritable() {
      return 'EROFS';
    }
  }
  assert.deepEqual(status(new ReadOnly(), v4), { ok: false, reason: 'IPAM store of network net is not writable: EROFS' });
});

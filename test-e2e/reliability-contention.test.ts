// Contention: many plugin processes at once on one network, as a node starting a burst of pods
// does. 200 ADDs at parallelism 16 into 250 free addresses, mixed with DELs (some twice, some of
// attachments that never existed), then a burst past capacity. No address is ever held by two
// attachments, every ADD past capacity fails with Pier's exhaustion error (code 100, not a lock
// timeout), and after the last DEL the store, the bridge's ports and Pier's nft elements are empty.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, TestWorld } from './cni-harness.ts';
import { callAsync, hostVeths, keepLog, nftElements, pierLs, prng, seedFor, storeFiles, type AsyncReply } from './reliability-common.ts';
import { ipJson } from './helpers.ts';

const PARALLEL = 16;
const ADDS = 200;
const PODS = 16;
const CAPACITY = 250;
const OVERFLOW = 30;

interface Att {
  id: number;
  cid: string;
  pod: string;
  ifname: string;
  ip?: string;
  addStart: number;
  addEnd?: number;
  delStart?: number;
  delEnd?: number;
  add?: AsyncReply;
}

describe('contention: 200 ADDs at parallelism 16 with DELs, then past capacity', () => {
  let w: TestWorld;
  let conf: ReturnType<TestWorld['conf']>;
  let pods: string[] = [];
  const rnd = prng(seedFor('contention', 7001));
  const all: Att[] = [];
  const figures = { adds: 0, addOk: 0, dels: 0, exhausted: 0 };

  before(() => {
    ensureBuilt();
    w = new TestWorld();
    // A /24 narrowed to exactly 250 addresses: .2 .. .251 (.1 is the gateway).
    conf = w.conf('1.0.0', {
      subnet: '10.231.0.0/24',
      extra: { ipMasq: true },
      ipam: { ranges: [[{ subnet: '10.231.0.0/24', rangeStart: '10.231.0.2', rangeEnd: '10.231.0.251' }]] },
    });
    pods = Array.from({ length: PODS }, () => w.addPod());
  });

  after(() => {
    console.log(`# contention figures: ${JSON.stringify(figures)}`);
    keepLog(w, 'contention');
    w?.cleanup.runAll();
  });

  // Attachment n lives in pod n % PODS as eth<n / PODS>: unique pairs, few namespaces.
  const make = (n: number): Att => ({ id: n, cid: `c${String(n).padStart(4, '0')}`, pod: pods[n % PODS], ifname: `eth${Math.floor(n / PODS)}`, addStart: 0 });

  async function add(a: Att): Promise<AsyncReply> {
    a.addStart = Date.now();
    figures.adds++;
    const r = await callAsync(w, { command: 'ADD', containerId: a.cid, netns: w.netnsPath(a.pod), ifname: a.ifname }, conf);
    a.addEnd = Date.now();
    a.add = r;
    if (r.status === 0) {
      figures.addOk++;
      a.ip = r.json.ips[0].address;
    }
    return r;
  }

  async function del(a: Att, withNetns = true): Promise<AsyncReply> {
    a.delStart ??= Date.now();
    figures.dels++;
    const r = await callAsync(w, { command: 'DEL', containerId: a.cid, ifname: a.ifname, ...(withNetns && { netns: w.netnsPath(a.pod) }) }, conf);
    a.delEnd = Date.now();
    assert.equal(r.status, 0, `DEL ${a.cid}/${a.ifname}: ${r.stdout}`);
    return r;
  }

  /** Runs a queue that grows while it runs (an ADD may enqueue its DEL), `PARALLEL` at a time. */
  async function runQueue(queue: Array<() => Promise<unknown>>): Promise<void> {
    let active = 0;
    await new Promise<void>((resolve, reject) => {
      const pump = () => {
        if (!queue.length && !active) return resolve();
        while (active < PARALLEL && queue.length) {
          const job = queue.shift()!;
          active++;
          job().then(() => {
            active--;
            pump();
          }, reject);
        }
      };
      pump();
    });
  }

  /** No two attachments held the same address while both surely held it (ADD done, DEL not begun). */
  function assertNoOverlap(): void {
    const byIp = new Map<string, Att[]>();
    for (const a of all) if (a.ip) byIp.set(a.ip, [...(byIp.get(a.ip) ?? []), a]);
    for (const [ip, holders] of byIp) {
      for (const x of holders) {
        for (const y of holders) {
          if (x === y) continue;
          const xEnd = x.delStart ?? Infinity;
          const yEnd = y.delStart ?? Infinity;
          assert.ok(!(x.addEnd! < yEnd && y.addEnd! < xEnd), `${ip} held by ${x.cid}/${x.ifname} and ${y.cid}/${y.ifname} at the same time`);
        }
      }
    }
  }

  /** At a quiet moment: store, pods, bridge ports and nft elements all agree with who is alive. */
  function assertConsistent(alive: Att[]): void {
    const ips = alive.map((a) => a.ip!.split('/')[0]);
    assert.equal(new Set(ips).size, ips.length, 'alive attachments hold distinct addresses');
    const files = storeFiles(w.dataDir, conf.name);
    assert.deepEqual(files.ips.sort(), [...ips].sort(), 'store IP files are exactly the alive addresses');
    assert.equal(files.records.length, alive.length, 'one record per alive attachment');
    assert.deepEqual(files.other, [], 'no temp files left');
    const ls = pierLs(w.dataDir);
    assert.deepEqual(ls.map((r) => `${r.containerID}/${r.ifname}=${r.ips[0]}`).sort(), alive.map((a) => `${a.cid}/${a.ifname}=${a.ip}`).sort());
    // What the pods really have: every alive attachment's interface carries its address, once.
    const seen = new Map<string, string>();
    for (const pod of pods) {
      for (const l of ipJson<any[]>(pod, 'addr', 'show')) {
        for (const ad of l.addr_info ?? []) {
          if (ad.family !== 'inet' || ad.local.startsWith('127.')) continue;
          assert.ok(!seen.has(ad.local), `${ad.local} configured twice: ${seen.get(ad.local)} and ${pod}/${l.ifname}`);
          seen.set(ad.local, `${pod}/${l.ifname}`);
        }
      }
    }
    assert.deepEqual([...seen.keys()].sort(), [...ips].sort(), 'pod interfaces carry exactly the alive addresses');
    assert.equal(hostVeths(w, conf.bridge).ports.length, alive.length, 'one bridge port per alive attachment');
    const els = nftElements(w, conf.nftTable).filter((e) => e.set.startsWith('podaddrs4'));
    assert.deepEqual(els.map((e) => e.comment).sort(), alive.map((a) => `${a.cid}/${a.ifname}`).sort(), 'one masquerade element per alive attachment');
  }

  it('200 ADDs with interleaved DELs: every ADD succeeds, no address is shared', async () => {
    const queue: Array<() => Promise<unknown>> = [];
    for (let n = 0; n < ADDS; n++) {
      const a = make(n);
      all.push(a);
      queue.push(async () => {
        const r = await add(a);
        assert.equal(r.status, 0, `ADD ${a.cid}/${a.ifname}: ${r.stdout}`);
        // About a third of the pods die soon after starting; some get containerd's second DEL.
        if (rnd.chance(0.35)) {
          const twice = rnd.chance(0.3);
          queue.push(async () => {
            await del(a);
            if (twice) await del(a, false);
          });
        }
      });
      // A DEL for an attachment that never existed (a runtime retrying after its own crash).
      if (rnd.chance(0.05)) queue.push(() => del({ ...make(10_000 + n) }, rnd.chance(0.5)));
    }
    const t0 = Date.now();
    await runQueue(queue);
    console.log(`# contention: ${ADDS} ADDs with DELs in ${Date.now() - t0} ms`);
    assertNoOverlap();
    assertConsistent(all.filter((a) => a.ip && a.delStart === undefined));
  });

  it(`a burst of ADDs ${OVERFLOW} past capacity: exactly ${OVERFLOW} fail, each with code 100`, async () => {
    const alive = all.filter((a) => a.ip && a.delStart === undefined);
    const free = CAPACITY - alive.length;
    const burst = Array.from({ length: free + OVERFLOW }, (_, i) => make(ADDS + i));
    all.push(...burst);
    await runQueue(burst.map((a) => () => add(a)));
    const failed = burst.filter((a) => a.add!.status !== 0);
    assert.equal(failed.length, OVERFLOW, `failures: ${failed.map((a) => a.add!.stdout).join('\n')}`);
    // Code 100 itself says it was not a lock timeout (that is code 11, after waiting 10 s).
    for (const a of failed) {
      assert.equal(a.add!.json?.code, 100, `ADD past capacity must be exhaustion (100), not a timeout: ${a.add!.stdout}`);
      assert.match(a.add!.json.msg, /no free address in range set 0 \(10\.231\.0\.2-10\.231\.0\.251/);
    }
    figures.exhausted = failed.length;
    assertNoOverlap();
    assertConsistent(all.filter((a) => a.ip && a.delStart === undefined));
  });

  it('after every DEL: store, bridge ports and nft elements are empty', async () => {
    const alive = all.filter((a) => a.ip && a.delStart === undefined);
    await runQueue(alive.map((a) => () => del(a, rnd.chance(0.8))));
    assertNoOverlap();
    assertConsistent([]);
    const files = storeFiles(w.dataDir, conf.name);
    assert.deepEqual(files, { ips: [], records: [], other: [] });
    assert.deepEqual(hostVeths(w, conf.bridge), { ports: [], veths: [] });
    assert.deepEqual(nftElements(w, conf.nftTable), []);
    for (const pod of pods) assert.deepEqual(ipJson<any[]>(pod, 'link', 'show').map((l) => l.ifname), ['lo'], `${pod} has only lo left`);
  });
});

// Crashes: a seeded loop SIGKILLs `pier` at random moments of ADD and DEL, then does what a
// runtime does to recover (DEL, then GC with an empty list of valid attachments) and checks that
// nothing leaked: no address reserved, no veth, no nft element, no temp file; the store parses
// (`pier ls --json`) after every kill; and the next ADD works.
//
// Product code has no test hooks (STYLE rule 12), so the kill points are random delays; after
// each kill the state left behind tells which phase the kill landed in, and the test reports
// how many kills landed in each (the figures are printed at the end).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ensureBuilt, TestWorld } from './cni-harness.ts';
import { callAsync, hostVeths, keepLog, nftElements, pierLs, prng, seedFor, storeFiles, type Prng } from './reliability-common.ts';
import { ipJson } from './helpers.ts';

const ITERATIONS = Number(process.env.RELIABILITY_CRASH_ITERATIONS ?? 50);

const LOOPS = 2;

/** One crash loop in its own TestWorld; LOOPS of them run side by side to use the machine. */
class CrashLoop {
  readonly w = new TestWorld();
  readonly conf: ReturnType<TestWorld['conf']>;
  readonly pod: string;
  kills = 0;

  constructor(
    readonly rnd: Prng,
    readonly phases: Map<string, number>,
    subnet: string,
  ) {
    this.conf = this.w.conf('1.1.0', { subnet, extra: { ipMasq: true } });
    this.pod = this.w.addPod();
  }

  // The attachment under test is always eth0; the one kept alive between iterations is eth1 of
  // the same pod (so the counts below are "more than the one alive").
  env(cid: string, netns = true, ifname = 'eth0') {
    return { containerId: cid, ifname, ...(netns && { netns: this.w.netnsPath(this.pod) }) };
  }

  /** What a killed call left behind. */
  observe(cid: string) {
    const { w, conf, pod } = this;
    const files = storeFiles(w.dataDir, conf.name);
    const record = files.records.includes(`${cid}_eth0.json`);
    const ipFile = files.ips.some((f) => readFileSync(`${w.dataDir}/${conf.name}/${f}`, 'utf8').startsWith(`${cid}\r\n`));
    const podLinks = ipJson<any[]>(pod, 'addr', 'show').filter((l) => l.ifname === 'eth0');
    const podLink = podLinks.length > 0;
    const podAddr = podLinks.some((l) => (l.addr_info ?? []).some((a: any) => a.family === 'inet'));
    const { ports, veths } = hostVeths(w, conf.bridge);
    const nft = nftElements(w, conf.nftTable).some((e) => e.comment === `${cid}/eth0`);
    return { temp: files.other.length > 0, record, ipFile, podLink, podAddr, hostVeth: veths.length > 1, onBridge: ports.length > 1, nft };
  }

  assertClean(when: string): void {
    const { w, conf, pod } = this;
    const files = storeFiles(w.dataDir, conf.name);
    assert.deepEqual(files, { ips: [], records: [], other: [] }, `store empty ${when}`);
    assert.deepEqual(hostVeths(w, conf.bridge), { ports: [], veths: [] }, `no veth ${when}`);
    assert.deepEqual(ipJson<any[]>(pod, 'link', 'show').map((l) => l.ifname), ['lo'], `pod has only lo ${when}`);
    assert.deepEqual(nftElements(w, conf.nftTable), [], `no nft element ${when}`);
  }

  async run(iterations: number): Promise<void> {
    const { w, conf, rnd } = this;
    // Kills spread over 0..1.1x how long an uninterrupted call of the kind takes here (learnt
    // from the calls so far: machines differ), so most land mid-call.
    const took: Record<string, number[]> = { ADD: [], DEL: [] };
    const typical = (op: string) => {
      const xs = [...took[op]].sort((a, b) => a - b);
      return xs.length ? xs[Math.floor(xs.length / 2)] : 250;
    };
    const probe = await callAsync(w, { command: 'ADD', ...this.env('probe', true, 'eth1') }, conf);
    assert.equal(probe.status, 0, probe.stdout);
    let alive = 'probe';
    for (let i = 0; i < iterations; i++) {
      const cid = `k${i}`;
      const op = rnd.chance(0.6) ? 'ADD' : 'DEL';
      if (op === 'DEL') {
        const r = await callAsync(w, { command: 'ADD', ...this.env(cid) }, conf);
        assert.equal(r.status, 0, `ADD before the killed DEL: ${r.stdout}`);
        took.ADD.push(r.ms);
      }
      const child = w.spawn({ command: op, ...this.env(cid) }, conf);
      const delay = rnd.next() * typical(op) * 1.1;
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      const timer = setTimeout(() => child.kill('SIGKILL'), delay);
      const code = await exited;
      clearTimeout(timer);
      const killed = code === null;
      if (killed) this.kills++;
      const phase = killed ? (op === 'ADD' ? addPhase(this.observe(cid)) : delPhase(this.observe(cid))) : `${op}: finished before the kill`;
      this.phases.set(phase, (this.phases.get(phase) ?? 0) + 1);
      // The store parses whatever instant the kill hit.
      pierLs(w.dataDir);

      // Recovery as a runtime does it: DEL (with the netns, or containerd's second DEL without),
      // then GC listing nothing as valid (the previous iteration's attachment included).
      const del = await callAsync(w, { command: 'DEL', ...this.env(cid, op === 'ADD' || rnd.chance(0.5)) }, conf);
      assert.equal(del.status, 0, `iteration ${i} (${phase}, ${delay.toFixed(0)} ms): DEL ${del.stdout}`);
      took.DEL.push(del.ms);
      const gc = await callAsync(w, { command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] });
      assert.equal(gc.status, 0, `iteration ${i}: GC ${gc.stdout}`);
      this.assertClean(`after iteration ${i} (${phase}, killed at ${delay.toFixed(0)} ms)`);

      // The next ADD works, and stays until the next iteration's GC.
      alive = `n${i}`;
      const next = await callAsync(w, { command: 'ADD', ...this.env(alive, true, 'eth1') }, conf);
      assert.equal(next.status, 0, `iteration ${i}: next ADD ${next.stdout}`);
      took.ADD.push(next.ms);
    }
    const last = await callAsync(w, { command: 'DEL', ...this.env(alive, true, 'eth1') }, conf);
    assert.equal(last.status, 0, last.stdout);
    this.assertClean('at the end');
    assert.deepEqual(pierLs(w.dataDir), [], 'pier ls lists nothing at the end');
  }
}

function addPhase(s: ReturnType<CrashLoop['observe']>): string {
  if (s.temp) return 'ADD: mid-write (temp file left in the store)';
  if (s.record && !s.ipFile) return 'ADD: half-written reservation (record, no IP file)';
  if (!s.record && s.ipFile) return 'ADD: IP file without record (impossible by write order)';
  if (!s.record) return s.podLink ? 'ADD: veth without reservation (impossible)' : 'ADD: before the reservation (start-up, lock)';
  if (!s.podLink && !s.hostVeth) return 'ADD: reserved, no veth yet';
  if (!s.onBridge || !s.podAddr) return 'ADD: veth made, not yet on the bridge / addressed';
  if (!s.nft) return 'ADD: wired, nft not yet applied';
  return 'ADD: nft applied, reply not yet written';
}

function delPhase(s: ReturnType<CrashLoop['observe']>): string {
  if (s.temp) return 'DEL: mid-write (temp file left in the store)';
  if (s.hostVeth && s.nft && s.record) return 'DEL: nothing removed yet';
  if (!s.hostVeth && s.nft) return 'DEL: veth removed, nft not yet';
  if (s.record && s.ipFile) return 'DEL: veth and nft removed, addresses not yet';
  if (s.record) return 'DEL: half-released (IP file freed, record left)';
  return 'DEL: all released, reply not yet written';
}

describe(`crashes: SIGKILL during ADD and DEL (${ITERATIONS} iterations), then DEL + GC`, () => {
  const seed = seedFor('crash', 7002);
  const phases = new Map<string, number>();
  const loops: CrashLoop[] = [];

  before(() => {
    ensureBuilt();
    for (let l = 0; l < LOOPS; l++) loops.push(new CrashLoop(prng(seed + l), phases, `10.232.${l}.0/24`));
  });

  after(() => {
    const kills = loops.reduce((n, l) => n + l.kills, 0);
    console.log(`# crash figures: ${kills} SIGKILLs in ${ITERATIONS} iterations; landed in: ${JSON.stringify(Object.fromEntries([...phases].sort((a, b) => b[1] - a[1])))}`);
    loops.forEach((l, i) => keepLog(l.w, `crash-${i}`));
    for (const l of loops) l.w.cleanup.runAll();
  });

  it('a killed ADD or DEL never leaks and never breaks the store', async () => {
    await Promise.all(loops.map((l) => l.run(Math.ceil(ITERATIONS / LOOPS))));
    const kills = loops.reduce((n, l) => n + l.kills, 0);
    assert.ok(kills >= ITERATIONS / 2, `most iterations killed pier mid-call (${kills}/${ITERATIONS})`);
  });
});

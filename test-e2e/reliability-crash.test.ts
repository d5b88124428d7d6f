// Crashes: `pier` SIGKILLed at every point of an ADD and of a DEL where something changes (each
// store write, lock, namespace switch and netlink or nf_tables message; see kill-points.ts),
// then what a runtime does to recover (DEL, then GC with an empty list of valid attachments).
// After each kill: the store parses (`pier ls --json`); after recovery nothing leaked (no
// address reserved, no veth, no nft element, no temp file); and the next ADD works.
//
// Product code has no test hooks (STYLE rule 12): strace delivers the kill on entry to the n-th
// call of one system call, counted in a trace of the same request made just before in the same
// state, so the kill points do not depend on the machine's speed. The state each kill left
// tells which phase it landed in, and the test requires every phase that matters to be hit.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ensureBuilt, TestWorld } from './cni-harness.ts';
import { callAsync, hostVeths, keepLog, nftElements, pierLs, storeFiles } from './reliability-common.ts';
import { callKilledAt, signature, traceKillPoints, type KillPoint } from './kill-points.ts';
import { ipJson } from './helpers.ts';

/** The calls whose entry is a kill point here: each changes the store, the kernel or a lock. */
const POINTS = new Set(['sendto', 'setns', 'flock', 'rename', 'link', 'unlink', 'mkdir']);

/** What a killed ADD can leave, in words; each of these must be seen at least once. */
const ADD_PHASES = [
  'ADD: nothing made yet',
  'ADD: a temp file in the store',
  'ADD: a record without its address file',
  'ADD: reserved, nothing in the kernel yet',
  'ADD: reserved, the kernel half done',
  'ADD: everything made, no reply yet',
] as const;

const DEL_PHASES = [
  'DEL: nothing removed yet',
  'DEL: the kernel half cleaned',
  'DEL: the kernel clean, the reservation kept',
  'DEL: the address released, the record kept',
  'DEL: everything removed, no reply yet',
] as const;

describe('crashes: SIGKILL at every point of ADD and DEL, then DEL + GC', () => {
  let w: TestWorld;
  let conf: ReturnType<TestWorld['conf']>;
  let pod: string;
  // The attachment under test is always eth0; the one kept alive between kills is eth1 of the
  // same pod (so "more than one veth" means "one of the attachment under test").
  let alive = 'probe';
  const phases = new Map<string, number>();
  let kills = 0;
  let retries = 0;

  const env = (cid: string, netns = true, ifname = 'eth0') => ({ containerId: cid, ifname, ...(netns && { netns: w.netnsPath(pod) }) });

  before(async () => {
    ensureBuilt();
    w = new TestWorld();
    conf = w.conf('1.1.0', { subnet: '10.232.0.0/24', extra: { ipMasq: true } });
    pod = w.addPod();
    const probe = await callAsync(w, { command: 'ADD', ...env(alive, true, 'eth1') }, conf);
    assert.equal(probe.status, 0, probe.stdout);
  });

  after(() => {
    console.log(`# crash figures: ${kills} kills (${retries} retried: the call took another course than traced); landed in ${JSON.stringify(Object.fromEntries(phases))}`);
    keepLog(w, 'crash');
    w?.cleanup.runAll();
  });

  /** What a killed call left behind. */
  function observe(cid: string) {
    const files = storeFiles(w.dataDir, conf.name);
    const record = files.records.includes(`${cid}_eth0.json`);
    const ipFile = files.ips.some((f) => readFileSync(`${w.dataDir}/${conf.name}/${f}`, 'utf8').startsWith(`${cid}\r\n`));
    const podLinks = ipJson<any[]>(pod, 'addr', 'show').filter((l) => l.ifname === 'eth0');
    const podAddr = podLinks.some((l) => (l.addr_info ?? []).some((a: any) => a.family === 'inet'));
    const { ports, veths } = hostVeths(w, conf.bridge);
    const nft = nftElements(w, conf.nftTable).some((e) => e.comment === `${cid}/eth0`);
    return { temp: files.other.length > 0, record, ipFile, podLink: podLinks.length > 0, podAddr, hostVeth: veths.length > 1, onBridge: ports.length > 1, nft };
  }

  function addPhase(s: ReturnType<typeof observe>): string[] {
    const kernel = [s.nft, s.hostVeth, s.onBridge, s.podAddr];
    const out: string[] = [];
    if (s.temp) out.push('ADD: a temp file in the store');
    if (s.record && !s.ipFile) out.push('ADD: a record without its address file');
    if (!s.record && s.ipFile) out.push('ADD: an address file without its record (impossible by write order)');
    if (!s.record && !s.ipFile && !s.temp) out.push(kernel.some(Boolean) ? 'ADD: kernel changes without a reservation (impossible)' : 'ADD: nothing made yet');
    if (s.record && s.ipFile) {
      if (kernel.every(Boolean)) out.push('ADD: everything made, no reply yet');
      else out.push(kernel.some(Boolean) || s.podLink ? 'ADD: reserved, the kernel half done' : 'ADD: reserved, nothing in the kernel yet');
    }
    return out;
  }

  function delPhase(s: ReturnType<typeof observe>): string[] {
    const out: string[] = [];
    if (s.temp) out.push('DEL: a temp file in the store');
    const kernel = [s.nft, s.hostVeth];
    if (s.record && s.ipFile) {
      if (kernel.every(Boolean)) out.push('DEL: nothing removed yet');
      else out.push(kernel.some(Boolean) ? 'DEL: the kernel half cleaned' : 'DEL: the kernel clean, the reservation kept');
    } else if (s.record) out.push('DEL: the address released, the record kept');
    else if (s.ipFile) out.push('DEL: a record removed before its address file (wrong order)');
    else out.push(kernel.some(Boolean) ? 'DEL: reservation gone, the kernel not clean (wrong order)' : 'DEL: everything removed, no reply yet');
    return out;
  }

  function assertClean(when: string): void {
    assert.deepEqual(storeFiles(w.dataDir, conf.name), { ips: [], records: [], other: [] }, `store empty ${when}`);
    assert.deepEqual(hostVeths(w, conf.bridge), { ports: [], veths: [] }, `no veth ${when}`);
    assert.deepEqual(ipJson<any[]>(pod, 'link', 'show').map((l) => l.ifname), ['lo'], `pod has only lo ${when}`);
    assert.deepEqual(nftElements(w, conf.nftTable), [], `no nft element ${when}`);
  }

  /**
   * Kills `op` of attachment `cid` at `point` (retrying when the call took another course than
   * in the trace, e.g. a lock found busy by someone else's test), then recovers as a runtime
   * does and checks that nothing leaked. Returns the phases the kill landed in.
   */
  async function killAndRecover(op: 'ADD' | 'DEL', cid: string, point: KillPoint, traced: string): Promise<string[]> {
    const want = signature(point.line, traced);
    for (let attempt = 1; ; attempt++) {
      if (op === 'DEL') {
        const r = await callAsync(w, { command: 'ADD', ...env(cid) }, conf);
        assert.equal(r.status, 0, `ADD before the killed DEL: ${r.stdout}`);
      }
      const where = `${op} killed at ${point.syscall}#${point.nth} (${want})`;
      const k = await callKilledAt(w, { command: op, ...env(cid) }, conf, point);
      kills++;
      assert.equal(k.signal, 'SIGKILL', `${where}: it ended first (status ${k.status}): ${k.stdout} ${k.stderr}`);
      const landed = signature(k.lastCall, cid) === want;
      const state = observe(cid);
      const phase = op === 'ADD' ? addPhase(state) : delPhase(state);
      // The store parses whatever instant the kill hit.
      pierLs(w.dataDir);

      // Recovery as a runtime does it: DEL (with the netns, or containerd's second DEL without),
      // then GC listing nothing as valid (the attachment kept alive included).
      const del = await callAsync(w, { command: 'DEL', ...env(cid, op === 'ADD' || point.nth % 2 === 0) }, conf);
      assert.equal(del.status, 0, `${where}, ${phase}: DEL ${del.stdout}`);
      const gc = await callAsync(w, { command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] });
      assert.equal(gc.status, 0, `${where}: GC ${gc.stdout}`);
      assertClean(`after the ${where} (${phase.join('; ')})`);

      // The next ADD works, and stays until the next kill's GC.
      alive = `n-${cid}`;
      const next = await callAsync(w, { command: 'ADD', ...env(alive, true, 'eth1') }, conf);
      assert.equal(next.status, 0, `${where}: next ADD ${next.stdout}`);

      if (landed) return phase;
      retries++;
      assert.ok(attempt < 3, `${where}: landed at ${signature(k.lastCall, cid)} (${k.lastCall}) three times`);
    }
  }

  /** The kill points of `op` in the state every kill starts from (one attachment alive). */
  async function pointsOf(op: 'ADD' | 'DEL'): Promise<{ points: KillPoint[]; cid: string }> {
    const cid = `trace-${op.toLowerCase()}`;
    if (op === 'DEL') assert.equal((await callAsync(w, { command: 'ADD', ...env(cid) }, conf)).status, 0);
    const t = traceKillPoints(w, { command: op, ...env(cid) }, conf);
    assert.equal(t.reply.status, 0, `traced ${op}: ${t.reply.stdout}`);
    if (op === 'ADD') assert.equal((await callAsync(w, { command: 'DEL', ...env(cid) }, conf)).status, 0);
    return { points: t.points.filter((p) => POINTS.has(p.syscall)), cid };
  }

  for (const op of ['ADD', 'DEL'] as const) {
    it(`${op} killed at each point never leaks and never breaks the store, and the kills land in every phase`, async () => {
      const { points, cid } = await pointsOf(op);
      assert.ok(points.length >= 10, `only ${points.length} kill points in ${op}`);
      const hit = new Set<string>();
      for (const [i, p] of points.entries()) {
        for (const phase of await killAndRecover(op, `k${op.toLowerCase()}${i}`, p, cid)) {
          hit.add(phase);
          phases.set(phase, (phases.get(phase) ?? 0) + 1);
        }
      }
      const wanted: readonly string[] = op === 'ADD' ? ADD_PHASES : DEL_PHASES;
      assert.deepEqual([...hit].filter((h) => !wanted.includes(h)), [], 'no kill left a state that cannot be');
      assert.deepEqual(wanted.filter((h) => !hit.has(h)), [], `phases no kill landed in (of ${points.length} kill points)`);
    });
  }

  it('at the end: nothing left but the attachment kept alive, which DELs cleanly', async () => {
    const last = await callAsync(w, { command: 'DEL', ...env(alive, true, 'eth1') }, conf);
    assert.equal(last.status, 0, last.stdout);
    assertClean('at the end');
    assert.deepEqual(pierLs(w.dataDir), [], 'pier ls lists nothing at the end');
  });
});

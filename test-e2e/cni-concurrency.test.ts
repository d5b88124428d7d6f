// Many dist/pier processes at once, and processes killed in the middle of ADD: concurrent ADDs
// get distinct addresses and ports, and whatever a SIGKILL leaves, DEL and GC clean up. Worlds
// are unique to this file and removed in after(); only processes this file started are killed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorld, ensureBuilt, type CniCall, type CniReply, Worlds, ok } from './cni-harness.ts';
import { tableElements } from './nft-state.ts';
import { ipJson } from './helpers.ts';

const worlds = new Worlds();
const newWorld = (): TestWorld => worlds.make();
/** Children still running when a test ends are killed (by pid) before the worlds go. */
const running = new Set<number>();

before(() => ensureBuilt());
after(() => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  worlds.cleanupAll();
});

/** Runs the plugin as a child process; resolves with its reply when it exits. */
function spawnCall(w: TestWorld, call: CniCall, stdin: unknown): { pid: number; done: Promise<CniReply & { signal: NodeJS.Signals | null }> } {
  const child = w.spawn(call, stdin);
  const pid = child.pid!;
  running.add(pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CniReply & { signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (status, signal) => {
      running.delete(pid);
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ status, signal, stdout, stderr, json });
    });
  });
  return { pid, done };
}

/** mulberry32: a small seeded PRNG, so a failing kill schedule can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bridgePorts(w: TestWorld): any[] {
  const br = `${w.prefix}br`;
  if (!ipJson(w.host, 'link', 'show').some((l: any) => l.ifname === br)) return [];
  return ipJson(w.host, 'link', 'show', 'master', br);
}

function hostVeths(w: TestWorld): string[] {
  return ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname);
}

function store(w: TestWorld) {
  const dir = join(w.dataDir, `${w.prefix}net`);
  const names = existsSync(dir) ? readdirSync(dir) : [];
  return {
    other: names.filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n)),
    records: existsSync(join(dir, 'attachments')) ? readdirSync(join(dir, 'attachments')) : [],
  };
}

function nftCommented(w: TestWorld): string[] {
  return tableElements(w.host, `pier_test_${w.prefix}`).flatMap((e) => (e.comment ? [e.comment] : []));
}

describe('concurrent processes', () => {
  it('30 concurrent ADDs get 30 distinct addresses and 30 bridge ports; 30 concurrent DELs leave nothing', async () => {
    const w = newWorld();
    const conf = w.conf('1.0.0');
    const N = 30;
    const pods = Array.from({ length: N }, () => w.addPod());
    const id = (n: number) => ({ containerId: `conc-${n}`, netns: w.netnsPath(pods[n]), ifname: 'eth0' });

    const adds = await Promise.all(pods.map((_, n) => spawnCall(w, { command: 'ADD', ...id(n) }, conf).done));
    const results = adds.map((r, n) => ok(r, `ADD ${n}`));
    const addresses = results.map((r) => r.ips[0].address);
    assert.equal(new Set(addresses).size, N, `distinct addresses: ${addresses.join(' ')}`);
    for (const a of addresses) assert.match(a, /^10\.213\.0\.\d+\/24$/);
    assert.ok(!addresses.includes('10.213.0.1/24'), 'nobody got the gateway');
    const ports = bridgePorts(w).map((l) => l.ifname).sort();
    assert.equal(ports.length, N);
    assert.deepEqual(ports, results.map((r) => r.interfaces[1].name).sort());
    assert.equal(store(w).other.length, N);
    assert.equal(store(w).records.length, N);
    for (const [n, pod] of pods.entries()) {
      const l = ipJson(pod, 'addr', 'show', 'dev', 'eth0')[0];
      assert.ok(l.addr_info.some((x: any) => `${x.local}/${x.prefixlen}` === addresses[n]), `pod ${n} has ${addresses[n]}`);
    }

    const dels = await Promise.all(pods.map((_, n) => spawnCall(w, { command: 'DEL', ...id(n) }, { ...conf, prevResult: results[n] }).done));
    dels.forEach((r, n) => ok(r, `DEL ${n}`));
    assert.deepEqual(bridgePorts(w), []);
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(store(w), { other: [], records: [] });
  });

  it('an ADD killed with SIGKILL at any moment leaves nothing DEL and GC cannot clean', async () => {
    const w = newWorld();
    const seed = Number(process.env.PIER_TEST_SEED ?? 0x5eed);
    const rand = prng(seed);
    const pod = w.addPod();
    const netns = w.netnsPath(pod);
    const ITERATIONS = 10;
    for (let i = 0; i < ITERATIONS; i++) {
      // Every other iteration with masquerade, so the kill can also land in the nft transaction.
      const conf = w.conf('1.1.0', { extra: { ipMasq: i % 2 === 1 } });
      const delay = 5 + Math.floor(rand() * 146);
      const ctx = `iteration ${i} (seed ${seed}, kill after ${delay} ms)`;
      const id = { containerId: `killed-${i}`, netns, ifname: 'eth0' };

      const add = spawnCall(w, { command: 'ADD', ...id }, conf);
      await sleep(delay);
      try {
        process.kill(add.pid, 'SIGKILL');
      } catch {
        /* it finished first */
      }
      const r = await add.done;
      if (r.signal !== 'SIGKILL') ok(r, `${ctx}: ADD that finished before the kill`);

      ok(w.call({ command: 'DEL', ...id }, conf), `${ctx}: DEL`);
      ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }), `${ctx}: GC`);
      assert.deepEqual(store(w), { other: [], records: [] }, `${ctx}: no reservation or record left`);
      assert.deepEqual(bridgePorts(w), [], `${ctx}: no port left on the bridge`);
      assert.deepEqual(hostVeths(w), [], `${ctx}: no veth left in the host netns`);
      assert.ok(!ipJson(pod, 'link', 'show').some((l: any) => l.ifname === 'eth0'), `${ctx}: no eth0 left in the pod`);
      assert.deepEqual(nftCommented(w), [], `${ctx}: no nft element left`);

      // The next ADD into the same pod works, and cleans up too.
      const next = { containerId: `next-${i}`, netns, ifname: 'eth0' };
      const res = ok(w.call({ command: 'ADD', ...next }, conf), `${ctx}: next ADD`);
      ok(w.call({ command: 'DEL', ...next }, { ...conf, prevResult: res }), `${ctx}: next DEL`);
    }
    assert.deepEqual(store(w), { other: [], records: [] });
  });

  // ADD records the host veth's name only once the pod is wired; a kill in between leaves a
  // record without it. Rewriting the record is how this test lands in that window every time.
  for (const cleaner of ['GC alone', 'DEL without netns'] as const) {
    it(`a record without the host veth (ADD killed while wiring): ${cleaner} removes the veth too`, () => {
      const w = newWorld();
      const pod = w.addPod();
      const conf = w.conf('1.1.0');
      const id = { containerId: 'half-wired', netns: w.netnsPath(pod), ifname: 'eth0' };
      const res = ok(w.call({ command: 'ADD', ...id }, conf), 'ADD');
      const file = join(w.dataDir, `${w.prefix}net`, 'attachments', 'half-wired_eth0.json');
      const rec = JSON.parse(readFileSync(file, 'utf8'));
      assert.equal(rec.hostVeth, res.interfaces[1].name);
      delete rec.hostVeth;
      delete rec.extra;
      writeFileSync(file, JSON.stringify({ ...rec, extra: {} }));

      if (cleaner === 'GC alone') ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }), 'GC');
      else ok(w.call({ command: 'DEL', ...id, netns: '' }, conf), 'DEL with CNI_NETNS=""');
      assert.deepEqual(store(w), { other: [], records: [] });
      assert.deepEqual(hostVeths(w), [], 'the host veth is gone');
      assert.ok(!ipJson(pod, 'link', 'show').some((l: any) => l.ifname === 'eth0'), 'the pod\'s eth0 is gone, so its released address is not in use');
    });
  }
});

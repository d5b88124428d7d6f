// Many dist/pier processes at once, and processes killed in the middle of ADD (at each stage,
// on entry to the call that does it: kill-points.ts): concurrent ADDs get distinct addresses and
// ports, and whatever a SIGKILL leaves, DEL and GC clean up. Worlds
// are unique to this file and removed in after(); only processes this file started are killed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { PIER, TestWorld, ensureBuilt, type CniCall, type CniReply, Worlds, ok } from './cni-harness.ts';
import { elementsOf, listTable } from './nft-state.ts';
import { callKilledAt, signature, traceKillPoints, type KillPoint } from './kill-points.ts';
import { ipJson, waitFor } from './helpers.ts';

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

  // Where an ADD can die, as the trace of the same request in the same state shows it: each
  // stage is the first call that does that step (picked by what it does, so a changed order
  // fails here by name), and the kill lands on entry to that call (kill-points.ts).
  const STAGES: Array<{ what: string; nat?: boolean; at: (p: KillPoint, i: number, all: KillPoint[]) => boolean }> = [
    { what: 'taking the store lock', at: (p) => p.syscall === 'flock' && /LOCK_EX/.test(p.line) },
    { what: 'putting the record in place', at: (p) => p.syscall === 'rename' },
    { what: 'reserving the address (link)', at: (p) => p.syscall === 'link' },
    { what: 'trying the fast nf_tables batch', nat: true, at: (p) => p.syscall === 'sendto' && /NFNL_MSG_BATCH_BEGIN/.test(p.line) },
    { what: 'creating the veth pair', at: (p) => p.syscall === 'sendto' && /NLM_F_REQUEST\|NLM_F_ACK\|0x600/.test(p.line) && /nlmsg_type=0x10/.test(p.line) },
    { what: 'putting the host end on the bridge', at: (p) => p.syscall === 'sendto' && /nlmsg_type=RTM_NEWLINK/.test(p.line) },
    { what: 'addressing the pod', at: (p) => p.syscall === 'sendto' && /nlmsg_type=0x14/.test(p.line) },
    { what: 'setting the pod routes', at: (p) => p.syscall === 'sendto' && /nlmsg_type=0x18/.test(p.line) },
    { what: 'starting nft for the network setup', nat: true, at: (p) => p.syscall === 'clone' },
    // Pier dies with its nft child started: the setup (and this pod's elements) may still land.
    { what: 'waiting for nft (the child runs on)', nat: true, at: (p, i, all) => p.syscall === 'write' && all.slice(0, i).some((q) => q.syscall === 'clone') },
    { what: 'wired, before the reply', at: (p, i, all) => p.syscall === 'sendto' && !all.slice(i + 1).some((q) => q.syscall === 'sendto') },
  ];

  it('an ADD killed at each stage (lock, store, veth, addresses, routes, nft) leaves nothing DEL and GC cannot clean', async () => {
    const w = newWorld();
    const pod = w.addPod();
    const netns = w.netnsPath(pod);
    // The bridge is made by the first ADD: make it now, so every ADD below takes one course.
    const warm = { containerId: 'warm', netns, ifname: 'eth0' };
    ok(w.call({ command: 'ADD', ...warm }, w.conf('1.1.0')), 'ADD');
    ok(w.call({ command: 'DEL', ...warm }, w.conf('1.1.0')), 'DEL');
    let n = 0;
    for (const nat of [false, true]) {
      const conf = w.conf('1.1.0', { extra: { ipMasq: nat } });
      // With masquerade every ADD here is the network's first (its table deleted before it), so
      // the network is set up by an `nft -j -f` child in the same transaction as the pod.
      const fresh = () => nat && w.exec('nft', ['delete', 'table', 'inet', conf.nftTable]);
      fresh();
      const traced = traceKillPoints(w, { command: 'ADD', containerId: 'traced', netns, ifname: 'eth0' }, conf);
      ok(traced.reply, 'traced ADD');
      ok(w.call({ command: 'DEL', containerId: 'traced', netns, ifname: 'eth0' }, conf), 'DEL of the traced ADD');
      for (const stage of STAGES.filter((st) => !st.nat || nat)) {
        const point = traced.points.find((p, i, all) => stage.at(p, i, all));
        assert.ok(point, `no call ${stage.what} in the traced ADD (nat ${nat}): ${traced.points.map((p) => p.syscall).join(' ')}`);
        const id = { containerId: `killed-${n++}`, netns, ifname: 'eth0' };
        const ctx = `ADD (nat ${nat}) killed ${stage.what}, at ${point.syscall}#${point.nth}`;
        fresh();
        const k = await callKilledAt(w, { command: 'ADD', ...id }, conf, point);
        assert.equal(k.signal, 'SIGKILL', `${ctx}: it ended first (status ${k.status}): ${k.stdout}`);
        assert.equal(signature(k.lastCall, id.containerId), signature(point.line, 'traced'), `${ctx}: landed elsewhere: ${k.lastCall}`);

        ok(w.call({ command: 'DEL', ...id }, conf), `${ctx}: DEL`);
        ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }), `${ctx}: GC`);
        assert.deepEqual(store(w), { other: [], records: [] }, `${ctx}: no reservation or record left`);
        assert.deepEqual(bridgePorts(w), [], `${ctx}: no port left on the bridge`);
        assert.deepEqual(hostVeths(w), [], `${ctx}: no veth left in the host netns`);
        assert.ok(!ipJson(pod, 'link', 'show').some((l: any) => l.ifname === 'eth0'), `${ctx}: no eth0 left in the pod`);
        // Killed before nft set the network up, there is no table: that is no element too.
        const table = listTable(w.host, `pier_test_${w.prefix}`);
        assert.deepEqual(table ? elementsOf(table).filter((e) => e.comment) : [], [], `${ctx}: no nft element left`);

        // The next ADD into the same pod works, and cleans up too.
        const next = { containerId: `next-${n}`, netns, ifname: 'eth0' };
        const res = ok(w.call({ command: 'ADD', ...next }, conf), `${ctx}: next ADD`);
        ok(w.call({ command: 'DEL', ...next }, { ...conf, prevResult: res }), `${ctx}: next DEL`);
      }
    }
    assert.deepEqual(store(w), { other: [], records: [] });
  });

  // Pier killed while its `nft -j -f` child sets the network up: the child must die with it.
  // Otherwise it applies the setup WITH the dead pod's elements after the runtime's DEL and GC
  // are done, and the element stays until some later GC (src/nft/runner.ts, applyTransaction).
  // strace holds the child at the moment named, the test kills Pier (by PID) when the child is
  // there, then runs DEL and GC, waits for the child to end, and looks for the pod's element.
  // - while nft runs: nft's nf_tables batch (sendmsg) is held 3 s;
  // - after setpriv started but before it armed the signal (its first prctl is held 3 s): Pier
  //   must not have handed over the document yet. The kill comes 1 s into that hold, so that a
  //   Pier that writes the document without waiting for nft has done so (seen red that way);
  //   a right one waits whatever the delay, so this is no timing assertion.
  const kills = [
    { when: 'while its nft child runs', comm: 'nft', settleMs: 0, strace: ['-e', 'trace=sendmsg', '-e', 'inject=sendmsg:delay_enter=3000000'] },
    { when: 'after it started setpriv, before setpriv armed the child to die with it', comm: 'setpriv', settleMs: 1000, strace: ['-e', 'trace=prctl', '-e', 'inject=prctl:delay_enter=3000000:when=1'] },
  ];
  for (const k of kills) {
    it(`an ADD killed ${k.when}: no element of it lands after DEL and GC`, async () => {
      const w = newWorld();
      const pod = w.addPod();
      const netns = w.netnsPath(pod);
      const conf = w.conf('1.1.0', { extra: { ipMasq: true } });
      // The table goes after a first ADD and DEL, so that the next ADD sets it up through nft.
      const warm = { containerId: 'warm', netns, ifname: 'eth0' };
      ok(w.call({ command: 'ADD', ...warm }, conf), 'ADD');
      ok(w.call({ command: 'DEL', ...warm }, conf), 'DEL');
      w.exec('nft', ['delete', 'table', 'inet', conf.nftTable]);

      const id = { containerId: 'victim', netns, ifname: 'eth0' };
      const env = Object.entries(w.env({ command: 'ADD', ...id })).map(([key, v]) => `${key}=${v}`);
      // `ip netns exec` and then strace exec in place: child.pid is strace's; Pier is its child.
      const child = spawn('ip', ['netns', 'exec', w.host, 'strace', '-f', '-qq', '-o', '/dev/null', ...k.strace, 'env', '-i', ...env, PIER], { stdio: ['pipe', 'ignore', 'ignore'] });
      running.add(child.pid!);
      child.stdin.end(JSON.stringify(conf));
      const closed = once(child, 'close');
      const childrenOf = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        } catch {
          return [];
        }
      };
      const commOf = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
        } catch {
          return '';
        }
      };
      let pier = 0;
      await waitFor(() => {
        pier = childrenOf(child.pid!)[0] ?? 0;
        return pier > 0 && childrenOf(pier).some((c) => commOf(c) === k.comm);
      }, `Pier's child to be ${k.comm}`);
      if (k.settleMs) await new Promise((r) => setTimeout(r, k.settleMs));
      process.kill(pier, 'SIGKILL');
      ok(w.call({ command: 'DEL', ...id }, conf), 'DEL');
      ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }), 'GC');
      await closed;
      running.delete(child.pid!);
      const table = listTable(w.host, `pier_test_${w.prefix}`);
      assert.deepEqual(table ? elementsOf(table).filter((e) => e.comment === 'victim/eth0') : [], [], 'an element of the dead ADD landed after DEL and GC');
    });
  }

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

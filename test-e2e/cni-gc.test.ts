// GC as runtimes and `pier gc` send it, with dist/pier in a TestWorld's host netns: a GC
// without a list (cnitool's) tears nothing down, a GC reports every failed step and still runs
// the others, and `pier gc` keeps the attachments whose netns is alive in every IPAM mode
// (Pier's own, a delegated host-local, none).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PIER, removeFromDefaultStore, REFERENCE_PLUGINS, TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';
import { ipJson } from './helpers.ts';

const worlds = new Worlds();

const newWorld = (): TestWorld => worlds.make();

before(() => {
  ensureBuilt();
  assert.ok(existsSync(join(REFERENCE_PLUGINS, 'host-local')), 'host-local is installed (scripts/install-deps.sh)');
});
after(() => worlds.cleanupAll());

/** `pier ARGS` (the human CLI) in the world's host netns, logging to the world's log. */
function pierCli(w: TestWorld, args: string[]) {
  return spawnSync('ip', ['netns', 'exec', w.host, PIER, ...args], { encoding: 'utf8', env: { ...process.env, PIER_LOG_FILE: w.logFile } });
}

function hostVeths(w: TestWorld): string[] {
  return ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname).sort();
}

function podAddresses(pod: string): string[] {
  const l = ipJson(pod, 'addr', 'show').find((x: any) => x.ifname === 'eth0');
  return (l?.addr_info ?? []).filter((a: any) => a.family === 'inet').map((a: any) => `${a.local}/${a.prefixlen}`);
}

/** Reservation files of a host-local style store directory. */
function reservations(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n)).sort();
}

function recordsOf(w: TestWorld, dataDir = w.dataDir): string[] {
  const r = pierCli(w, ['ls', '--json', '--data-dir', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).map((a: any) => a.containerID).sort();
}

/**
 * The `containerID/ifname` comments of the elements in the world's nft table. The table must be
 * listable: "no table" and "nft failed" are not "no element".
 */
function nftOwners(w: TestWorld): string[] {
  const r = w.exec('nft', ['-j', 'list', 'table', 'inet', `pier_test_${w.prefix}`]);
  assert.equal(r.status, 0, `nft list table: ${r.stderr}`);
  const out = new Set<string>();
  for (const obj of JSON.parse(r.stdout).nftables) {
    for (const e of (obj.set ?? obj.map)?.elem ?? []) {
      const el = (Array.isArray(e) ? e[0] : e).elem ?? {};
      if (el.comment) out.add(el.comment);
    }
  }
  return [...out].sort();
}

describe('GC without cni.dev/valid-attachments', () => {
  it('is refused with code 7 telling a cnitool user what to do, and tears nothing down', () => {
    const w = newWorld();
    const conf = w.conf('1.1.0', { extra: { ipMasq: true } });
    const pod = w.addPod();
    const res = ok(w.call({ command: 'ADD', containerId: 'keep', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    const address = res.ips[0].address;

    // What `cnitool gc` sends: no list at all.
    const e = fails(w.call({ command: 'GC' }, conf), 7, 'GC without a list');
    assert.match(e.msg, /cni\.dev\/valid-attachments/);
    assert.match(`${e.msg} ${e.details}`, /cnitool/);
    assert.match(`${e.msg} ${e.details}`, /pier gc/);
    assert.deepEqual(podAddresses(pod), [address], 'the pod keeps its address');
    assert.deepEqual(hostVeths(w), [res.interfaces[1].name], 'the host veth is still there');
    assert.deepEqual(reservations(join(w.dataDir, conf.name)), [address.split('/')[0]]);
    assert.deepEqual(nftOwners(w), ['keep/eth0']);

    // An explicit empty list still means "nothing is valid".
    ok(w.call({ command: 'GC' }, { ...conf, 'cni.dev/valid-attachments': [] }), 'GC with []');
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(reservations(join(w.dataDir, conf.name)), []);
    assert.deepEqual(nftOwners(w), []);
  });
});

describe('GC with failing steps', () => {
  it('reports every error and still runs the steps after them', () => {
    const w = newWorld();
    const hlDir = join(w.dataDir, 'host-local');
    // Debian's host-local speaks CNI up to 1.0.0; GC needs 1.1.0 (as `pier gc` sends it).
    const conf = w.conf('1.0.0', { ipam: { type: 'host-local', dataDir: hlDir }, extra: { dataDir: w.dataDir, ipMasq: true } });
    const pod = w.addPod();
    ok(w.call({ command: 'ADD', containerId: 'gone', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.deepEqual(nftOwners(w), ['gone/eth0']);

    // Two real failures: the delegated IPAM is not in CNI_PATH, and the records' directory of
    // Pier's store is a file.
    const store = join(w.dataDir, conf.name, 'attachments');
    renameSync(store, `${store}.saved`);
    writeFileSync(store, 'not a directory');
    const broken = { ...conf, cniVersion: '1.1.0', ipam: { type: 'pier-test-no-such-ipam' }, 'cni.dev/valid-attachments': [] };
    const r = w.call({ command: 'GC' }, broken);
    assert.notEqual(r.status, 0, `GC should fail: ${r.stdout}`);
    assert.match(r.json.msg, /pier-test-no-such-ipam/, r.stdout);
    assert.match(r.json.msg, /attachments/, r.stdout);
    assert.deepEqual(nftOwners(w), [], 'the NAT step ran after both failures');

    rmSync(store);
    renameSync(`${store}.saved`, store);
    ok(w.call({ command: 'GC' }, { ...conf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] }), 'GC on the repaired store');
    assert.deepEqual(recordsOf(w), []);
    assert.deepEqual(reservations(join(hlDir, conf.name)), [], 'host-local released the address');
  });
});

describe('`pier gc` keeps the attachments whose netns is alive', () => {
  const modes = {
    'pier-ipam': (w: TestWorld) => w.conf('1.1.0', { extra: { ipMasq: true } }),
    // Records in the top-level dataDir, which is not the default: the bug was looking elsewhere.
    // Debian's host-local speaks CNI up to 1.0.0 (`pier gc` sends GC as 1.1.0 whatever the file says).
    'a delegated host-local': (w: TestWorld) =>
      w.conf('1.0.0', { ipam: { type: 'host-local', dataDir: join(w.dataDir, 'host-local') }, extra: { dataDir: w.dataDir, ipMasq: true } }),
    'no IPAM': (w: TestWorld) => {
      const { ipam: _, ...conf } = w.conf('1.1.0');
      return { ...conf, dataDir: w.dataDir };
    },
  };
  for (const [mode, makeConf] of Object.entries(modes)) {
    it(`with ${mode}`, () => {
      const w = newWorld();
      const conf = makeConf(w) as ReturnType<TestWorld['conf']> & { ipMasq?: boolean };
      const file = join(w.dataDir, 'net.conf');
      writeFileSync(file, JSON.stringify(conf));
      const [live, dead] = [w.addPod(), w.addPod()];
      const a = ok(w.call({ command: 'ADD', containerId: 'live', netns: w.netnsPath(live), ifname: 'eth0' }, conf), 'ADD live');
      ok(w.call({ command: 'ADD', containerId: 'dead', netns: w.netnsPath(dead), ifname: 'eth0' }, conf), 'ADD dead');
      assert.equal(spawnSync('ip', ['netns', 'del', dead]).status, 0);

      const r = pierCli(w, ['gc', '-c', file]);
      assert.deepEqual(hostVeths(w), [a.interfaces[1].name], 'the live pod keeps its host veth');
      assert.equal(r.status, 0, `pier gc: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /kept 1 live attachment\(s\), released 1/);
      assert.deepEqual(podAddresses(live), (a.ips ?? []).map((i: any) => i.address), 'and its address');
      assert.deepEqual(recordsOf(w), ['live'], 'and its record');
      if (mode === 'pier-ipam') assert.deepEqual(reservations(join(w.dataDir, conf.name)), [a.ips[0].address.split('/')[0]]);
      if (mode === 'no IPAM') assert.equal(ipJson(live, 'link', 'show', 'dev', 'eth0').length, 1, 'the live pod keeps its eth0');
      if (mode === 'a delegated host-local') {
        assert.deepEqual(reservations(join(w.dataDir, 'host-local', conf.name)), [a.ips[0].address.split('/')[0]], 'host-local keeps the live address only');
      }
      if (conf.ipMasq) assert.deepEqual(nftOwners(w), ['live/eth0']);

      ok(w.call({ command: 'DEL', containerId: 'live', netns: w.netnsPath(live), ifname: 'eth0' }, conf), 'DEL live');
      assert.deepEqual(hostVeths(w), []);
      assert.deepEqual(recordsOf(w), []);
    });
  }

  it('reads where records live from the config with capitalised keys and from --data-dir', () => {
    const w = newWorld();
    const other = join(w.dataDir, 'elsewhere');
    mkdirSync(other);
    const { ipam: _, ...base } = w.conf('1.1.0');
    // Where a Pier that ignores DataDir puts the records: this machine's default store.
    w.cleanup.add(() => removeFromDefaultStore(base.name));
    const conf = { ...base, DataDir: other };
    const file = join(w.dataDir, 'net.conf');
    writeFileSync(file, JSON.stringify(conf));
    const pod = w.addPod();
    ok(w.call({ command: 'ADD', containerId: 'live', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.deepEqual(recordsOf(w, other), ['live']);
    const r = pierCli(w, ['gc', '-c', file]);
    assert.equal(r.status, 0, `pier gc: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /kept 1 live attachment\(s\), released 0/);
    assert.equal(hostVeths(w).length, 1);

    // --data-dir names the records' directory of a network without Pier's IPAM too.
    const { DataDir: __, ...noDir } = conf;
    writeFileSync(file, JSON.stringify(noDir));
    const r2 = pierCli(w, ['gc', '-c', file, '--data-dir', other]);
    assert.equal(r2.status, 0, `pier gc --data-dir: ${r2.stdout}${r2.stderr}`);
    assert.match(r2.stdout, /kept 1 live attachment\(s\), released 0/);
    assert.equal(hostVeths(w).length, 1);
    ok(w.call({ command: 'DEL', containerId: 'live', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'DEL');
  });
});

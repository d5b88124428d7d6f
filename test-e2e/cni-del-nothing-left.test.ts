// A DEL with nothing to remove is cheap, and the record still outlives every NAT entry it
// describes (del.ts's header gives the argument; these tests check each part of it):
// - containerd's second DEL (CNI_NETNS="", no prevResult, after the first removed everything)
//   does not ask nft at all;
// - without a record, a store that cannot prove the attachment absent (gone, mid-change, a torn
//   record) still gets the NAT entries found and removed by their comment;
// - a DEL, an ADD's undo or a GC whose NAT step fails keeps the record and the reservation, and
//   the next DEL or GC removes everything.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, Worlds, ensureBuilt, fails, ok, type CniCall, type TestWorld } from './cni-harness.ts';
import { nftElements, storeFiles } from './reliability-common.ts';

ensureBuilt();
const worlds = new Worlds();
after(() => worlds.cleanupAll());

const PORT = 18090;

function natConf(w: TestWorld, subnet = '10.213.0.0/24') {
  return w.conf('1.0.0', {
    subnet,
    extra: { ipMasq: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: PORT, containerPort: 80, protocol: 'tcp' }] } },
  });
}

/** The second DEL's stdin: what containerd sends at pod removal (no prevResult, no runtimeConfig). */
function bare(conf: Record<string, unknown>) {
  const { runtimeConfig: _r, prevResult: _p, ...rest } = conf;
  return rest;
}

/** An `nft` first in PATH that logs its arguments, then runs the real one. */
function nftSpy(w: TestWorld): { path: string; calls: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), `${w.prefix}-nftspy-`));
  w.cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, 'calls');
  writeFileSync(log, '');
  writeFileSync(join(dir, 'nft'), `#!/bin/sh\necho "$*" >> ${log}\nexec /usr/sbin/nft "$@"\n`);
  chmodSync(join(dir, 'nft'), 0o755);
  return { path: `${dir}:/usr/sbin:/usr/bin:/sbin:/bin`, calls: () => readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

/** Everything of `cid` that could be left: NAT entries, IP files and records, host veths. */
function leftovers(w: TestWorld, conf: any, cid: string) {
  const net = conf.name as string;
  const files = storeFiles(w.dataDir, net);
  const ipFiles = files.ips.filter((f) => {
    try {
      return readFileSync(join(w.dataDir, net, f), 'utf8').startsWith(`${cid}\r\n`);
    } catch {
      return false;
    }
  });
  return {
    nat: nftElements(w, conf.nftTable).filter((e) => e.comment?.startsWith(`${cid}/`)).length,
    ips: ipFiles.length,
    records: files.records.filter((r) => r.startsWith(`${cid}_`)).length,
  };
}

const NOTHING = { nat: 0, ips: 0, records: 0 };

/** Runs Pier in-process with a NAT driver that fails (failing-nat-plugin.ts), inside w's host. */
function callFailingNat(w: TestWorld, call: CniCall, stdin: unknown, fail: string) {
  const env = Object.entries({ ...w.env(call), PIER_TEST_FAIL_NAT: fail, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }).map(([k, v]) => `${k}=${v}`);
  const r = spawnSync('ip', ['netns', 'exec', w.host, 'env', '-i', ...env, process.execPath, '--import', 'tsx', join(ROOT, 'test-e2e/failing-nat-plugin.ts')], {
    cwd: ROOT,
    input: JSON.stringify(stdin),
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
}

describe('DEL with nothing to remove', () => {
  it("containerd's second DEL runs no nft and leaves nothing, after the first DEL removed everything", () => {
    const w = worlds.make();
    const pod = w.addPod();
    const conf = natConf(w);
    const spy = nftSpy(w);
    const att = { containerId: 'c-second-del', netns: w.netnsPath(pod), ifname: 'eth0' };
    const result = ok(w.call({ command: 'ADD', ...att }, conf), 'ADD');
    assert.equal(leftovers(w, conf, att.containerId).nat > 0, true, 'ADD installed NAT entries');
    ok(w.call({ command: 'DEL', ...att }, { ...conf, prevResult: result }), 'first DEL');
    assert.deepEqual(leftovers(w, conf, att.containerId), NOTHING);
    const r = ok(w.call({ command: 'DEL', ...att, netns: '', extraEnv: { PATH: spy.path } }, bare(conf)), 'second DEL');
    assert.equal(r, undefined, 'DEL prints nothing');
    assert.deepEqual(spy.calls(), [], 'the second DEL ran nft');
    assert.match(readFileSync(w.logFile, 'utf8'), /nothing recorded for this attachment/);
    assert.deepEqual(leftovers(w, conf, att.containerId), NOTHING);
    // A DEL of a key that never existed, in a clean store, is the same cheap call.
    ok(w.call({ command: 'DEL', containerId: 'never-added', netns: '', ifname: 'eth0', extraEnv: { PATH: spy.path } }, bare(conf)), 'DEL of an unknown key');
    assert.deepEqual(spy.calls(), []);
  });

  // Each case leaves NAT entries of the key with no readable record, in a store that cannot
  // prove the key absent; the DEL must find the entries by their comment, as before.
  const cases: Array<{ what: string; mutate: (w: TestWorld, conf: any, cid: string) => void }> = [
    {
      what: 'the store is gone (a wiped data dir)',
      mutate: (w, conf) => rmSync(join(w.dataDir, conf.name), { recursive: true, force: true }),
    },
    {
      what: 'the record is torn',
      mutate: (w, conf, cid) => writeFileSync(join(w.dataDir, conf.name, 'attachments', `${cid}_eth0.json`), '{"containerID": "'),
    },
    {
      what: 'the store was left mid-change (a process killed while it changed the store)',
      mutate: (w, conf, cid) => {
        rmSync(join(w.dataDir, conf.name, 'attachments', `${cid}_eth0.json`));
        const lock = join(w.dataDir, conf.name, 'lock');
        const text = readFileSync(lock, 'latin1');
        assert.match(text, /^pier-ipam-state 1 boot=\S+ clean/);
        writeFileSync(lock, text.replace(' clean', ' dirty'), 'latin1');
      },
    },
  ];
  for (const c of cases) {
    it(`without a record, when ${c.what}, DEL still finds and removes the NAT entries`, () => {
      const w = worlds.make();
      const pod = w.addPod();
      const conf = natConf(w);
      const att = { containerId: 'c-unproven', netns: w.netnsPath(pod), ifname: 'eth0' };
      ok(w.call({ command: 'ADD', ...att }, conf), 'ADD');
      assert.ok(leftovers(w, conf, att.containerId).nat > 0);
      c.mutate(w, conf, att.containerId);
      ok(w.call({ command: 'DEL', ...att, netns: '' }, bare(conf)), 'DEL');
      assert.equal(leftovers(w, conf, att.containerId).nat, 0, 'NAT entries left behind');
      assert.equal(leftovers(w, conf, att.containerId).ips, 0, 'reservation left behind');
    });
  }
});

describe('the record outlives the NAT entries', () => {
  it('a DEL whose NAT step fails keeps the record and reservation; the retry removes everything', () => {
    const w = worlds.make();
    const pod = w.addPod();
    const conf = natConf(w);
    const att = { containerId: 'c-nat-fails', netns: w.netnsPath(pod), ifname: 'eth0' };
    const result = ok(w.call({ command: 'ADD', ...att }, conf), 'ADD');
    const r = callFailingNat(w, { command: 'DEL', ...att }, { ...conf, prevResult: result }, 'del');
    assert.notEqual(r.status, 0, `the DEL should fail: ${r.stdout} ${r.stderr}`);
    assert.match(r.json?.msg ?? '', /injected failure/);
    const left = leftovers(w, conf, att.containerId);
    assert.equal(left.records, 1, 'the record went before its NAT entries');
    assert.equal(left.ips, 1, 'the address was released while the DNAT still points at it');
    assert.ok(left.nat > 0);
    // The runtime retries (here as containerd's second DEL would come).
    ok(w.call({ command: 'DEL', ...att, netns: '' }, bare(conf)), 'retried DEL');
    assert.deepEqual(leftovers(w, conf, att.containerId), NOTHING);
  });

  it("an ADD whose undo cannot remove its NAT entries keeps the record for the runtime's DEL", () => {
    const w = worlds.make();
    const pod = w.addPod();
    const conf = natConf(w);
    // A link that is not a bridge under the bridge's name: wiring fails after NAT went in.
    // (A veth: this kernel has no dummy driver.)
    const made = w.exec('ip', ['link', 'add', conf.bridge, 'type', 'veth', 'peer', 'name', `${w.prefix}bp`]);
    assert.equal(made.status, 0, made.stderr);
    const att = { containerId: 'c-undo-fails', netns: w.netnsPath(pod), ifname: 'eth0' };
    const r = callFailingNat(w, { command: 'ADD', ...att }, conf, 'del');
    assert.notEqual(r.status, 0, `the ADD should fail: ${r.stdout} ${r.stderr}`);
    assert.match(r.json?.msg ?? '', /not a bridge/);
    const left = leftovers(w, conf, att.containerId);
    assert.ok(left.nat > 0, 'the NAT entries were removed after all: the test proves nothing');
    assert.deepEqual({ records: left.records, ips: left.ips }, { records: 1, ips: 1 });
    w.exec('ip', ['link', 'del', conf.bridge]);
    // The runtime's DEL after a failed ADD: no netns used, no prevResult.
    ok(w.call({ command: 'DEL', ...att, netns: '' }, bare(conf)), 'DEL');
    assert.deepEqual(leftovers(w, conf, att.containerId), NOTHING);
  });

  it('a GC whose NAT pass fails releases nothing; the next GC releases everything', () => {
    const w = worlds.make();
    const conf = natConf(w);
    const gcConf = { ...bare(conf), cniVersion: '1.1.0', 'cni.dev/valid-attachments': [] };
    for (const cid of ['c-gc-1', 'c-gc-2']) {
      const c = { ...conf, runtimeConfig: { portMappings: [{ hostPort: cid.endsWith('1') ? PORT : PORT + 1, containerPort: 80, protocol: 'tcp' }] } };
      ok(w.call({ command: 'ADD', containerId: cid, netns: w.netnsPath(w.addPod()), ifname: 'eth0' }, c), `ADD ${cid}`);
    }
    const r = callFailingNat(w, { command: 'GC' }, gcConf, 'gc');
    assert.notEqual(r.status, 0, `the GC should fail: ${r.stdout} ${r.stderr}`);
    for (const cid of ['c-gc-1', 'c-gc-2']) {
      const left = leftovers(w, conf, cid);
      assert.deepEqual({ records: left.records, ips: left.ips }, { records: 1, ips: 1 }, cid);
      assert.ok(left.nat > 0, cid);
    }
    ok(w.call({ command: 'GC' }, gcConf), 'GC');
    for (const cid of ['c-gc-1', 'c-gc-2']) assert.deepEqual(leftovers(w, conf, cid), NOTHING, cid);
    assert.ok(existsSync(join(w.dataDir, conf.name)));
    assert.deepEqual(readdirSync(join(w.dataDir, conf.name, 'attachments')).filter((f) => f.endsWith('.json')), []);
  });
});

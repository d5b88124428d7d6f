// What dist/pier must never do, run as a runtime runs it: leave anything behind after a failed
// ADD, act on its own (host) netns, act on a CNI_NETNS that is not a netns, write anything for
// an invalid request, or delete another pod's interface on a DEL whose netns is not the
// recorded one. Every world is unique to this file and removed in after().
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PIER, TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';
import { tableElements } from './nft-state.ts';
import { inNs, ipJson } from './helpers.ts';

const worlds = new Worlds();
const newWorld = (): TestWorld => worlds.make();

before(() => ensureBuilt());
after(() => worlds.cleanupAll());

function linkIn(ns: string, name: string): any | undefined {
  return ipJson(ns, '-d', 'link', 'show').find((l: any) => l.ifname === name);
}

function bridgePorts(w: TestWorld): string[] {
  const br = `${w.prefix}br`;
  if (!linkIn(w.host, br)) return [];
  return ipJson(w.host, 'link', 'show', 'master', br).map((l: any) => l.ifname);
}

function hostVeths(w: TestWorld): string[] {
  return ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname);
}

/** Reserved addresses (file name -> holder) and attachment records of the world's network. */
function store(w: TestWorld) {
  const dir = join(w.dataDir, `${w.prefix}net`);
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const reservations: Record<string, string> = {};
  for (const n of names) {
    if (n === 'lock' || n === 'attachments' || /^last_reserved_ip\.\d+$/.test(n)) continue;
    reservations[n] = readFileSync(join(dir, n), 'utf8').split('\r\n')[0];
  }
  const records = existsSync(join(dir, 'attachments')) ? readdirSync(join(dir, 'attachments')) : [];
  return { reservations, records };
}

/** Every file and directory under dir (relative), except the log the harness puts there. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      out.push(relative(dir, p));
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.filter((p) => p !== 'pier.log').sort();
}

/** The hostPort entries in the world's nft table that belong to `comment` (`cid/ifname`). */
function nftElements(w: TestWorld, comment?: string): Array<{ set: string; comment: string }> {
  return tableElements(w.host, `pier_test_${w.prefix}`, comment)
    .flatMap((e) => (e.comment === undefined ? [] : [{ set: e.set, comment: e.comment }]));
}

describe('a failed ADD leaves nothing behind', () => {
  it('ADD fails when CNI_IFNAME already exists in the pod, and leaves no reservation and no veth', () => {
    const w = newWorld();
    const pod = w.addPod();
    // No dummy driver on every kernel: a veth pair inside the pod will do.
    assert.equal(inNs(pod, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer']).status, 0);
    const before = linkIn(pod, 'eth0');
    const e = fails(w.call({ command: 'ADD', containerId: 'exists', netns: w.netnsPath(pod), ifname: 'eth0' }, w.conf('1.0.0')), 4, 'ADD');
    assert.match(e.msg, /eth0/);
    assert.deepEqual(store(w), { reservations: {}, records: [] });
    assert.deepEqual(hostVeths(w), []);
    assert.equal(linkIn(pod, 'eth0')?.ifindex, before.ifindex, 'the existing eth0 is untouched');
    assert.ok(linkIn(pod, 'eth0peer'), 'and so is its peer');
  });

  it('a hostPort already mapped by another attachment fails the ADD and undoes everything', () => {
    const w = newWorld();
    const [p1, p2] = [w.addPod(), w.addPod()];
    const conf = w.conf('1.0.0', {
      extra: { capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] } },
    });
    const first = ok(w.call({ command: 'ADD', containerId: 'hp-1', netns: w.netnsPath(p1), ifname: 'eth0' }, conf), 'first ADD');
    const firstVeth = first.interfaces[1].name;
    const firstEls = nftElements(w, 'hp-1/eth0');
    assert.ok(firstEls.some((e) => /^hostports4_/.test(e.set)), `hostPort entry of hp-1: ${JSON.stringify(firstEls)}`);

    const r = fails(w.call({ command: 'ADD', containerId: 'hp-2', netns: w.netnsPath(p2), ifname: 'eth0' }, conf), 101, 'second ADD with the same hostPort');
    assert.match(r.msg, /18080/);
    assert.deepEqual(bridgePorts(w), [firstVeth], 'only the first pod is on the bridge');
    assert.deepEqual(hostVeths(w), [firstVeth]);
    assert.equal(linkIn(p2, 'eth0'), undefined, 'no interface left in the second pod');
    assert.deepEqual(Object.values(store(w).reservations), ['hp-1'], 'only the first reservation');
    assert.deepEqual(store(w).records, ['hp-1_eth0.json']);
    assert.deepEqual(nftElements(w, 'hp-2/eth0'), [], 'no nft element of the failed ADD');
    assert.deepEqual(nftElements(w, 'hp-1/eth0'), firstEls, 'the first pod\'s entries are intact');
    ok(w.call({ command: 'CHECK', containerId: 'hp-1', netns: w.netnsPath(p1), ifname: 'eth0' }, { ...conf, prevResult: first }), 'CHECK of the first');

    ok(w.call({ command: 'DEL', containerId: 'hp-1', netns: w.netnsPath(p1), ifname: 'eth0' }, { ...conf, prevResult: first }), 'DEL');
    assert.deepEqual(nftElements(w), []);
    // The port is free again.
    const again = ok(w.call({ command: 'ADD', containerId: 'hp-2', netns: w.netnsPath(p2), ifname: 'eth0' }, conf), 'ADD after the port was freed');
    ok(w.call({ command: 'DEL', containerId: 'hp-2', netns: w.netnsPath(p2), ifname: 'eth0' }, { ...conf, prevResult: again }), 'DEL');
    assert.deepEqual(store(w), { reservations: {}, records: [] });
    assert.deepEqual(hostVeths(w), []);
  });

  it('an IP requested that is already taken fails the ADD and leaves nothing of it', () => {
    const w = newWorld();
    const [p1, p2] = [w.addPod(), w.addPod()];
    const conf = w.conf('1.0.0');
    const first = ok(w.call({ command: 'ADD', containerId: 'ip-1', netns: w.netnsPath(p1), ifname: 'eth0', args: 'IP=10.213.0.50' }, conf), 'ADD');
    assert.equal(first.ips[0].address, '10.213.0.50/24');
    const r = fails(w.call({ command: 'ADD', containerId: 'ip-2', netns: w.netnsPath(p2), ifname: 'eth0', args: 'IP=10.213.0.50' }, conf), 101, 'ADD of a taken IP');
    assert.match(r.msg, /10\.213\.0\.50/);
    assert.deepEqual(store(w).reservations, { '10.213.0.50': 'ip-1' });
    assert.deepEqual(store(w).records, ['ip-1_eth0.json']);
    assert.deepEqual(hostVeths(w), [first.interfaces[1].name]);
    assert.equal(linkIn(p2, 'eth0'), undefined);
    ok(w.call({ command: 'DEL', containerId: 'ip-1', netns: w.netnsPath(p1), ifname: 'eth0' }, conf), 'DEL');
    assert.deepEqual(store(w), { reservations: {}, records: [] });
  });
});

describe('CNI_NETNS that must not be acted on', () => {
  it('Pier\'s own netns: ADD and DEL answer 8 and leave the host\'s eth7 (veth and bridge) alone', () => {
    const w = newWorld();
    assert.equal(w.exec('ip', ['link', 'add', 'eth7', 'type', 'veth', 'peer', 'name', 'eth7peer']).status, 0);
    assert.equal(w.exec('ip', ['link', 'add', 'br7', 'type', 'bridge']).status, 0);
    assert.equal(w.exec('ip', ['addr', 'add', '10.213.77.1/24', 'dev', 'eth7']).status, 0);
    const snapshot = () => ['eth7', 'eth7peer', 'br7'].map((n) => {
      const l = linkIn(w.host, n);
      return l && { ifindex: l.ifindex, kind: l.linkinfo?.info_kind, addr: l.address };
    });
    const before = snapshot();
    assert.ok(before.every(Boolean));
    const conf = w.conf('1.0.0');
    for (const netns of ['/proc/self/ns/net', w.netnsPath(w.host)]) {
      for (const ifname of ['eth7', 'br7']) {
        fails(w.call({ command: 'ADD', containerId: 'own', netns, ifname }, conf), 8, `ADD into ${netns} ${ifname}`);
        fails(w.call({ command: 'DEL', containerId: 'own', netns, ifname }, conf), 8, `DEL in ${netns} ${ifname}`);
        const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: ifname, sandbox: netns }], ips: [{ address: '10.213.77.1/24', interface: 0 }] };
        fails(w.call({ command: 'CHECK', containerId: 'own', netns, ifname }, { ...conf, prevResult }), 8, `CHECK in ${netns} ${ifname}`);
      }
    }
    assert.deepEqual(snapshot(), before, 'eth7, its peer and br7 are untouched');
    assert.ok(ipJson(w.host, 'addr', 'show', 'dev', 'eth7')[0].addr_info.some((a: any) => a.local === '10.213.77.1'));
    assert.deepEqual(store(w), { reservations: {}, records: [] });
    assert.equal(linkIn(w.host, `${w.prefix}br`), undefined, 'no bridge was created');
  });

  it('a plain file, a directory, a missing path: ADD answers 4, DEL succeeds and touches nothing', () => {
    const w = newWorld();
    const scratch = mkdtempSync(join(tmpdir(), `${w.prefix}-nsfiles-`));
    w.cleanup.add(() => rmSync(scratch, { recursive: true, force: true }));
    const file = join(scratch, 'not-a-netns');
    writeFileSync(file, 'hello');
    const dir = join(scratch, 'a-dir');
    mkdirSync(dir);
    const missing = join(scratch, 'missing');

    // A real pod on the network: nothing below may disturb it.
    const pod = w.addPod();
    const conf = w.conf('1.0.0');
    const real = ok(w.call({ command: 'ADD', containerId: 'real', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    const before = { store: store(w), veths: hostVeths(w), eth0: linkIn(pod, 'eth0').ifindex };

    for (const netns of [file, dir, missing, 'relative/path']) {
      fails(w.call({ command: 'ADD', containerId: 'bad', netns, ifname: 'eth0' }, conf), 4, `ADD with CNI_NETNS=${netns}`);
      ok(w.call({ command: 'DEL', containerId: 'bad', netns, ifname: 'eth0' }, conf), `DEL with CNI_NETNS=${netns}`);
    }
    assert.equal(readFileSync(file, 'utf8'), 'hello');
    assert.ok(statSync(dir).isDirectory());
    assert.deepEqual(readdirSync(dir), []);
    assert.ok(!existsSync(missing));
    assert.deepEqual({ store: store(w), veths: hostVeths(w), eth0: linkIn(pod, 'eth0')?.ifindex }, before, 'the real pod is untouched');
    ok(w.call({ command: 'CHECK', containerId: 'real', netns: w.netnsPath(pod), ifname: 'eth0' }, { ...conf, prevResult: real }), 'CHECK of the real pod');
    ok(w.call({ command: 'DEL', containerId: 'real', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'DEL');
  });

  it('a DEL whose CNI_NETNS is not the recorded netns never deletes that netns\'s interface', () => {
    const w = newWorld();
    const [a, b, c] = [w.addPod(), w.addPod(), w.addPod()];
    const conf = w.conf('1.0.0');
    const resA = ok(w.call({ command: 'ADD', containerId: 'pod-a', netns: w.netnsPath(a), ifname: 'eth0' }, conf), 'ADD A');
    const resB = ok(w.call({ command: 'ADD', containerId: 'pod-b', netns: w.netnsPath(b), ifname: 'eth0' }, conf), 'ADD B');
    // Pod C has an eth0 Pier did not make (a veth whose peer is in C too).
    assert.equal(inNs(c, 'ip', ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer']).status, 0);
    const bEth0 = linkIn(b, 'eth0').ifindex;
    const cEth0 = linkIn(c, 'eth0').ifindex;

    // DEL of A naming B's netns (say the path was reused): B's eth0 is not A's.
    ok(w.call({ command: 'DEL', containerId: 'pod-a', netns: w.netnsPath(b), ifname: 'eth0' }, { ...conf, prevResult: resA }), 'DEL A with B\'s netns');
    assert.equal(linkIn(b, 'eth0')?.ifindex, bEth0, 'B\'s eth0 survives');
    assert.ok(linkIn(w.host, resB.interfaces[1].name), 'B\'s host veth survives');
    assert.deepEqual(Object.values(store(w).reservations), ['pod-b']);
    assert.equal(linkIn(a, 'eth0'), undefined, 'A\'s own veth went by its record');
    ok(w.call({ command: 'CHECK', containerId: 'pod-b', netns: w.netnsPath(b), ifname: 'eth0' }, { ...conf, prevResult: resB }), 'CHECK of B');

    // A DEL for an attachment with no record at all, naming C's netns: C's own eth0 stays.
    ok(w.call({ command: 'DEL', containerId: 'never-added', netns: w.netnsPath(c), ifname: 'eth0' }, conf), 'DEL of an unknown attachment');
    assert.equal(linkIn(c, 'eth0')?.ifindex, cEth0, 'C\'s eth0 survives');
    // Nor does a DEL of B naming C's netns.
    ok(w.call({ command: 'DEL', containerId: 'pod-b', netns: w.netnsPath(c), ifname: 'eth0' }, conf), 'DEL B with C\'s netns');
    assert.equal(linkIn(c, 'eth0')?.ifindex, cEth0, 'C\'s eth0 survives');
    assert.deepEqual(store(w), { reservations: {}, records: [] });
    assert.deepEqual(hostVeths(w), []);
  });
});

describe('invalid requests write nothing', () => {
  type Case = { what: string; env?: Record<string, string>; containerId?: string; ifname?: string; netns?: string };
  const cases: Case[] = [
    { what: 'container id with ../', containerId: '../../etc/x' }, // check-test-paths: hostile input
    { what: 'container id starting with .', containerId: '.hidden' },
    { what: 'empty container id', containerId: '' },
    { what: 'ifname longer than 15 bytes', ifname: 'eth0123456789abc' },
    { what: 'ifname with a slash', ifname: 'a/b' },
    { what: 'ifname ..', ifname: '..' },
    { what: 'empty CNI_COMMAND', env: { CNI_COMMAND: '' } },
    { what: 'unknown CNI_COMMAND', env: { CNI_COMMAND: 'FROB' } },
    { what: 'empty CNI_NETNS on ADD and CHECK', netns: '' },
  ];

  for (const c of cases) {
    it(`${c.what}: code 4, nothing under the data dir, no link`, () => {
      const w = newWorld();
      const pod = w.addPod();
      const before = tree(w.dataDir);
      // DEL may run without CNI_NETNS (and then succeeds): only the other commands need it.
      const commands = c.netns === '' ? (['ADD', 'CHECK'] as const) : (['ADD', 'DEL', 'CHECK'] as const);
      for (const command of commands) {
        const r = w.call(
          { command, containerId: c.containerId ?? 'good-id', netns: c.netns ?? w.netnsPath(pod), ifname: c.ifname ?? 'eth0', extraEnv: c.env },
          { ...w.conf('1.0.0'), prevResult: { cniVersion: '1.0.0', ips: [{ address: '10.213.0.2/24' }] } },
        );
        fails(r, 4, `${command} with ${c.what}`);
        assert.match(`${r.json.msg} ${r.json.details}`, /CNI_/, 'the error names the variable');
      }
      assert.deepEqual(tree(w.dataDir), before, 'nothing written under the data dir');
      assert.deepEqual(store(w), { reservations: {}, records: [] });
      assert.equal(linkIn(w.host, `${w.prefix}br`), undefined);
      assert.equal(linkIn(pod, 'eth0'), undefined);
    });
  }

  it('no CNI_COMMAND but the other CNI_* variables: code 4, nothing written', () => {
    const w = newWorld();
    const pod = w.addPod();
    const env = w.env({ command: 'ADD', containerId: 'good-id', netns: w.netnsPath(pod), ifname: 'eth0' });
    delete env.CNI_COMMAND;
    const r = spawnSync('ip', ['netns', 'exec', w.host, 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), PIER], {
      input: JSON.stringify(w.conf('1.0.0')), encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.deepEqual(tree(w.dataDir), []);
    assert.equal(JSON.parse(r.stdout).code, 4);
  });
});

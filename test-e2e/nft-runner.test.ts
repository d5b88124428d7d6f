// The nft layer against the real nft and kernel (root): a network and its attachments in a
// table of this test's own (`pier_test_<random>`), listed back. All of it happens in a
// throwaway netns that this file's main thread enters for its whole run (every nft and
// conntrack it spawns inherits it), removed in after() whatever happens: so a forward chain
// with policy drop can be tried without cutting this machine's traffic. No traffic here besides
// two datagrams on lo: this checks the ruleset's shape, scale and bookkeeping.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import { CLONE_NEWNET, setns } from '../src/netlink/libc.ts';
import { run, uniquePrefix } from './helpers.ts';
import { buildNetworkSetup } from '../src/nft/build-network.ts';
import { attachmentElements, buildAttachmentAdd, buildAttachmentDel, buildDocument, claimsOf } from '../src/nft/build-attachment.ts';
import { assertNoHostPortConflicts, elementsOfAttachment, parseTableListing, type TableState } from '../src/nft/parse.ts';
import { applyTransaction, deleteUdpConntrack, listTable, nftAvailable } from '../src/nft/runner.ts';
import { checkForwardPolicy } from '../src/nft/forward-check.ts';
import { attachmentComment } from '../src/nft/names.ts';
import { CniError } from '../src/cni/errors.ts';
import type { NftAttachment, NftNetwork } from '../src/nft/model.ts';

const table = `pier_test_${randomBytes(4).toString('hex')}`;
const net: NftNetwork = {
  name: 'e2e-net', bridge: `pt${randomBytes(2).toString('hex')}br`, subnets: ['10.123.0.0/16', 'fd00:123::/64'],
  ipMasq: true, portMappings: true, table,
};
const att = (i: number, portMappings: NftAttachment['portMappings'] = []): NftAttachment => ({
  key: { containerID: `ctr${String(i).padStart(4, '0')}${'f'.repeat(56)}`, ifname: 'eth0' },
  ips: [`10.123.${Math.floor(i / 250)}.${(i % 250) + 2}/16`, `fd00:123::${(i + 2).toString(16)}/64`],
  portMappings,
});
const A = att(0, [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }, { hostPort: 15353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }]);
const B = att(1, [{ hostPort: 18081, containerPort: 80, protocol: 'tcp' }]);

async function state(): Promise<TableState> {
  const listing = await listTable('inet', table);
  assert.ok(listing, `table inet ${table} exists`);
  return parseTableListing(listing, table);
}
const ruleCount = (s: TableState) => s.chains.reduce((n, c) => n + c.rules, 0);
const sorted = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
/** What a CNI ADD sends: the network's setup and the attachment's elements in one transaction. */
const add = (a: NftAttachment) => applyTransaction(buildDocument([...buildNetworkSetup(net), ...buildAttachmentAdd(net, a)]));
/** An attachment's elements with their table-wide host-port claims: what ADD puts in the table. */
const made = (a: NftAttachment) => {
  const els = attachmentElements(net, a);
  return [...els, ...claimsOf(els)];
};

const NS = `${uniquePrefix()}-nftrun`;
let ownNetns = -1;

/** Lines `conntrack -L` prints for UDP flows to local port `port` (in this file's netns). */
function udpFlows(port: number): string[] {
  const r = spawnSync('conntrack', ['-L', '-f', 'ipv4', '-p', 'udp', '--orig-port-dst', String(port)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

describe('nft runner and builders against the kernel', () => {
  before(async () => {
    run('ip', ['netns', 'add', NS]);
    ownNetns = openSync('/proc/thread-self/ns/net', 'r');
    const fd = openSync(`/run/netns/${NS}`, 'r');
    try {
      setns(fd, CLONE_NEWNET, NS);
    } finally {
      closeSync(fd);
    }
    run('ip', ['link', 'set', 'lo', 'up']);
    const avail = await nftAvailable();
    assert.ok(avail.ok, JSON.stringify(avail));
  });

  after(() => {
    if (ownNetns >= 0) {
      setns(ownNetns, CLONE_NEWNET, 'own netns');
      closeSync(ownNetns);
    }
    spawnSync('ip', ['netns', 'del', NS]);
  });

  it('runs in its own netns, not the one it started in', () => {
    // statSync runs on this (the main) thread; a spawned `stat` shows what children inherit.
    const ns = statSync(`/run/netns/${NS}`).ino;
    assert.equal(statSync('/proc/thread-self/ns/net').ino, ns);
    assert.equal(Number(execFileSync('stat', ['-L', '-c', '%i', '/proc/self/ns/net'], { encoding: 'utf8' })), ns);
    assert.notEqual(fstatSync(ownNetns).ino, ns);
  });

  it('lists a table that does not exist as null', async () => {
    assert.equal(await listTable('inet', table), null);
  });

  it('applies a network and two attachments in one transaction and lists them back', async () => {
    await applyTransaction(buildDocument([...buildNetworkSetup(net), ...buildAttachmentAdd(net, A), ...buildAttachmentAdd(net, B)]));
    const s = await state();
    assert.equal(ruleCount(s), 16);
    // 4 sets, 8 hostport maps, 2 claim maps, and the setup's marker set.
    assert.equal(s.sets.length, 15);
    for (const a of [A, B]) assert.deepEqual(sorted(elementsOfAttachment(s, net, a.key)), sorted(made(a)));
  });

  it('re-applying the setup, or an attachment in restore mode, changes nothing (idempotent)', async () => {
    const before = await state();
    await applyTransaction(buildDocument([...buildNetworkSetup(net), ...buildAttachmentAdd(net, A, 'restore')]));
    const s = await state();
    assert.equal(ruleCount(s), 16);
    assert.deepEqual(sorted(s.elements), sorted(before.elements));
  });

  it('an ADD (claim mode) of ports already held fails whole, even for the same holder', async () => {
    const before = await state();
    await assert.rejects(add(A), (e: unknown) => e instanceof CniError && e.code === 102 && /File exists/.test(e.message));
    assert.deepEqual(sorted((await state()).elements), sorted(before.elements));
  });

  it('keeps the rule count constant with 50 more attachments', async () => {
    for (let i = 2; i < 52; i++) await add(att(i, [{ hostPort: 20000 + i, containerPort: 8080, protocol: 'tcp' }]));
    const s = await state();
    assert.equal(ruleCount(s), 16);
    assert.equal(new Set(s.elements.map((e) => e.comment)).size, 52);
    // 52 attachments x 2 addresses, + hostport and hairpin entries per family and mapping.
    assert.equal(s.elements.filter((e) => e.kind === 'podaddr').length, 104);
  });

  it('DEL removes exactly one attachment\'s elements, and a second DEL succeeds', async () => {
    const before = await state();
    const mine = elementsOfAttachment(before, net, A.key);
    assert.equal(mine.length, made(A).length);
    await applyTransaction(buildDocument(buildAttachmentDel(net, mine)));
    const s = await state();
    assert.deepEqual(elementsOfAttachment(s, net, A.key), []);
    assert.deepEqual(sorted(s.elements), sorted(before.elements.filter((e) => e.comment !== attachmentComment(A.key))));
    // Again, with the elements it had (as if the listing were stale): still fine, still gone.
    await applyTransaction(buildDocument(buildAttachmentDel(net, mine)));
    assert.deepEqual(elementsOfAttachment(await state(), net, A.key), []);
    assert.equal(ruleCount(await state()), 16);
  });

  it('detects a host port held by another attachment (101), and the kernel refuses it too', async () => {
    const intruder = att(99, [{ hostPort: 18081, containerPort: 9999, protocol: 'tcp' }]);
    const held = await state();
    assert.throws(() => assertNoHostPortConflicts(held, net, intruder),
      (e: unknown) => e instanceof CniError && e.code === 101 && e.message.includes(attachmentComment(B.key)));
    // Skipping the check: the map's EEXIST fails the whole transaction, nothing is half-applied.
    await assert.rejects(add(intruder), (e: unknown) => e instanceof CniError && e.code === 102);
    assert.deepEqual(sorted((await state()).elements), sorted(held.elements));
  });

  it('the table-wide claims refuse a host port held in another network, or on every address', async () => {
    const net2: NftNetwork = { ...net, name: 'e2e-net2', bridge: `${net.bridge.slice(0, -2)}b2`, subnets: ['10.124.0.0/16'] };
    const held = await state();
    const other = (portMappings: NftAttachment['portMappings']): NftAttachment =>
      ({ key: { containerID: 'other-net', ifname: 'eth0' }, ips: ['10.124.0.2/16'], portMappings });
    const add2 = (a: NftAttachment) => applyTransaction(buildDocument([...buildNetworkSetup(net2), ...buildAttachmentAdd(net2, a)]));
    // B holds 18081/tcp on any address in `net`.
    await assert.rejects(add2(other([{ hostPort: 18081, containerPort: 1, protocol: 'tcp' }])), /File exists/);
    await assert.rejects(add2(other([{ hostPort: 18081, containerPort: 1, protocol: 'tcp', hostIP: '192.0.2.7' }])), /File exists/);
    assert.deepEqual(sorted((await state()).elements), sorted(held.elements), 'nothing of the refused ADDs');
    // Another port, or the same one on another protocol, is free.
    await add2(other([{ hostPort: 18081, containerPort: 1, protocol: 'udp' }, { hostPort: 18181, containerPort: 1, protocol: 'tcp', hostIP: '192.0.2.7' }]));
    const mine = elementsOfAttachment(await state(), net2, { containerID: 'other-net', ifname: 'eth0' });
    assert.equal(mine.filter((e) => e.kind === 'claim').length, 2);
    await applyTransaction(buildDocument(buildAttachmentDel(net2, mine)));
    assert.deepEqual(sorted((await state()).elements), sorted(held.elements));
  });

  it('a DEL built from a record fails whole when a new holder took a key over', async () => {
    const old = att(300, [{ hostPort: 18300, containerPort: 80, protocol: 'tcp' }]);
    await add(old);
    const recorded = made(old);
    // The old holder's entries vanish without its DEL (a table rebuilt without it), and a new
    // pod maps the same port.
    await applyTransaction(buildDocument(buildAttachmentDel(net, recorded)));
    const heir = att(301, [{ hostPort: 18300, containerPort: 80, protocol: 'tcp' }]);
    await add(heir);
    const before = await state();
    await assert.rejects(applyTransaction(buildDocument(buildAttachmentDel(net, recorded))), /File exists/);
    assert.deepEqual(sorted((await state()).elements), sorted(before.elements), 'the heir keeps everything');
    await applyTransaction(buildDocument(buildAttachmentDel(net, made(heir))));
  });

  it('takes over a pod address left behind by an attachment that never got its DEL', async () => {
    const ghost = att(200);
    await add(ghost);
    const heir: NftAttachment = { ...ghost, key: { containerID: 'heir', ifname: 'eth0' } };
    await add(heir);
    const s = await state();
    assert.deepEqual(elementsOfAttachment(s, net, ghost.key), []);
    assert.equal(elementsOfAttachment(s, net, heir.key).length, 2);
  });

  it('reports forward chains with policy drop, except those of its own table', async () => {
    // Pier's own forward chains accept: give its table a dropping one too, so that leaving the
    // own table out has something to leave out, and another table with one.
    const other = `${table}_other`;
    for (const cmd of [
      `add chain inet ${table} fwdrop { type filter hook forward priority 10; policy drop; }`,
      `add table inet ${other}`,
      `add chain inet ${other} ff { type filter hook forward priority 0; policy drop; }`,
    ]) run('nft', [cmd]);
    try {
      const byName = (xs: Array<{ table: string }>) => [...xs].sort((a, b) => a.table.localeCompare(b.table));
      assert.deepEqual(byName(await checkForwardPolicy({ ownTable: 'pier_test_nobody' })), [
        { family: 'inet', table, chain: 'fwdrop' },
        { family: 'inet', table: other, chain: 'ff' },
      ]);
      assert.deepEqual(await checkForwardPolicy({ ownTable: table }), [{ family: 'inet', table: other, chain: 'ff' }]);
    } finally {
      run('nft', [`delete chain inet ${table} fwdrop; delete table inet ${other}`]);
    }
  });

  it('deletes the UDP conntrack entries of one port, and only those', async () => {
    // This netns tracks connections (the table's nat chains need it). Unanswered UDP flows
    // expire after 30 s by default: long enough, but not on a loaded machine, so longer here.
    run('sysctl', ['-qw', 'net.netfilter.nf_conntrack_udp_timeout=600']);
    const port = 40000 + Math.floor(Math.random() * 20000);
    const other = port + 1;
    run(process.execPath, ['-e', `const s = require('dgram').createSocket('udp4');
      s.send('x', ${port}, '127.0.0.1', () => s.send('x', ${other}, '127.0.0.1', () => s.close()));`]);
    assert.equal(udpFlows(port).length, 1, 'the datagram made a flow');
    assert.equal(udpFlows(other).length, 1, 'the other datagram made a flow');
    assert.deepEqual(await deleteUdpConntrack(port, 4), { ok: true, deleted: 1 });
    assert.deepEqual(udpFlows(port), [], 'the port\'s flow is gone');
    assert.equal(udpFlows(other).length, 1, 'the other port\'s flow stays');
    assert.deepEqual(await deleteUdpConntrack(port, 4), { ok: true, deleted: 0 }, 'nothing left to delete is no error');
  });

});

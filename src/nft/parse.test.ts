import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoHostPortConflicts, elementsByAttachment, elementsOfAttachment, findHostPortConflicts, parseTableListing,
} from './parse.ts';
import { attachmentElements, buildAttachmentDel, claimsOf } from './build-attachment.ts';
import { CniError } from '../cni/errors.ts';
import { attachmentComment } from './names.ts';
import { readFixture } from './testdata/golden.ts';
import { FIXTURE_ATTACHMENTS, FIXTURE_NET } from './testdata/fixtures.ts';
import type { NftAttachment } from './model.ts';

// Captured from nft 1.0.6 by testdata/capture.ts: FIXTURE_NET with FIXTURE_ATTACHMENTS, plus a
// hand-added element without comment.
const listing = readFixture('list-table-1.0.6.json');
const [A, B] = FIXTURE_ATTACHMENTS;

describe('parseTableListing (captured nft 1.0.6 output)', () => {
  const state = parseTableListing(listing);

  it('finds our chains with their hooks and rule counts', () => {
    assert.deepEqual(state.chains.map((c) => [c.name.replace(/_podnet_.*/, ''), c.hook, c.prio, c.policy, c.rules]), [
      ['postrouting', 'postrouting', 100, 'accept', 5],
      ['prerouting', 'prerouting', -100, 'accept', 4],
      ['output', 'output', -100, 'accept', 4],
      ['forward', 'forward', 0, 'accept', 3],
    ]);
    assert.equal(state.sets.length, 14);
  });

  it('reads back exactly the elements the builders made, halves joined', () => {
    for (const att of [A, B]) {
      const found = elementsOfAttachment(state, FIXTURE_NET, att.key);
      const sort = (xs: unknown[]) => xs.map((x) => JSON.stringify(x)).sort();
      const made = attachmentElements(FIXTURE_NET, att);
      assert.deepEqual(sort(found), sort([...made, ...claimsOf(made)]));
    }
  });

  it('skips the element without a comment, and counts it', () => {
    assert.equal(state.skipped, 1);
    assert.ok(!state.elements.some((e) => e.kind === 'podaddr' && e.addr === '10.88.0.99'));
  });

  it('groups elements by attachment for GC', () => {
    const groups = elementsByAttachment(state, FIXTURE_NET);
    assert.deepEqual([...groups.keys()].sort(), [attachmentComment(A.key), attachmentComment(B.key)].sort());
    assert.equal(elementsByAttachment(state, { name: 'other-net' }).size, 0);
  });

  it('gives DEL the commands for exactly one attachment', () => {
    const cmds = JSON.stringify(buildAttachmentDel(FIXTURE_NET, elementsOfAttachment(state, FIXTURE_NET, B.key)));
    assert.ok(cmds.includes(attachmentComment(B.key)));
    assert.ok(!cmds.includes(attachmentComment(A.key)));
  });

  it('ignores another table and returns an empty state for no table', () => {
    assert.deepEqual(parseTableListing(listing, 'pier_other').elements, []);
    assert.deepEqual(parseTableListing(null).elements, []);
  });
});

describe('parseTableListing (tolerance)', () => {
  const base = { family: 'inet', table: 'pier' };
  const wrap = (...items: unknown[]) => ({ nftables: [{ metainfo: { version: '9.9', json_schema_version: 2, new_key: 1 } }, ...items] });
  const suffix = 'podnet_3aa0627f';

  it('accepts numeric protocols and ports as strings, unknown keys and objects', () => {
    const state = parseTableListing(wrap(
      { flowtable: { ...base, name: 'ft' } },
      { something_new: {} },
      { set: { ...base, name: `hairpin4_${suffix}`, type: ['ipv4_addr', 'inet_proto', 'inet_service'], new_key: true,
        elem: [{ elem: { val: { concat: ['10.88.0.5', 17, '53'] }, comment: 'x/eth0', expires: 5 } }] } },
    ));
    assert.deepEqual(state.elements, [{ kind: 'hairpin', family: 4, addr: '10.88.0.5', protocol: 'udp', port: 53, comment: 'x/eth0', suffix }]);
  });

  it('keeps a hostport whose port half is missing, with the port null', () => {
    const state = parseTableListing(wrap({ map: { ...base, name: `hostports4_any_addr_${suffix}`, type: ['inet_proto', 'inet_service'], map: 'ipv4_addr',
      elem: [[{ elem: { val: { concat: ['tcp', 80] }, comment: 'x/eth0' } }, '10.88.0.5']] } }));
    assert.equal(state.elements.length, 1);
    assert.deepEqual(state.elements[0], { kind: 'hostport', family: 4, hostIP: null, protocol: 'tcp', hostPort: 80, podIP: '10.88.0.5', containerPort: null, comment: 'x/eth0', suffix });
  });

  it('reads table-wide claims and gives a network only those matching its hostport entries', () => {
    const claim = (host: string, port: number, comment: string) => [{ elem: { val: { concat: [host, 'tcp', port] }, comment } }, '10.88.0.5'];
    const state = parseTableListing(wrap(
      { map: { ...base, name: `hostports4_any_addr_${suffix}`, type: ['inet_proto', 'inet_service'], map: 'ipv4_addr',
        elem: [[{ elem: { val: { concat: ['tcp', 80] }, comment: 'x/eth0' } }, '10.88.0.5']] } },
      // x/eth0's claim of 80 goes with the entry above; its claim of 81 is another network's.
      { map: { ...base, name: 'hostport_claims4', elem: [claim('0.0.0.0', 80, 'x/eth0'), claim('0.0.0.0', 81, 'x/eth0'), claim('192.0.2.1', 80, 'y/eth0')] } },
    ));
    assert.deepEqual(state.elements.filter((e) => e.kind === 'claim').map((e) => e.kind === 'claim' && `${e.hostIP} ${e.hostPort} ${e.podIP} ${e.comment} [${e.suffix}]`),
      ['null 80 10.88.0.5 x/eth0 []', 'null 81 10.88.0.5 x/eth0 []', '192.0.2.1 80 10.88.0.5 y/eth0 []']);
    const mine = elementsOfAttachment(state, FIXTURE_NET, { containerID: 'x', ifname: 'eth0' });
    assert.deepEqual(mine.map((e) => `${e.kind} ${'hostPort' in e ? e.hostPort : ''}`), ['hostport 80', 'claim 80']);
    assert.deepEqual([...elementsByAttachment(state, FIXTURE_NET).keys()], ['x/eth0']);
  });

  it('skips elements of the wrong shape or family instead of guessing', () => {
    const state = parseTableListing(wrap(
      { set: { ...base, name: `podaddrs4_${suffix}`, elem: [{ elem: { val: 'fd00::1', comment: 'x/eth0' } }, { elem: { val: { prefix: { addr: '10.0.0.0', len: 8 } }, comment: 'y/eth0' } }] } },
      { map: { ...base, name: `hostports4_ip_port_${suffix}`, elem: [[{ elem: { val: { concat: ['tcp', 80] }, comment: 'x/eth0' } }, 80]] } },
    ));
    assert.equal(state.elements.length, 0);
    assert.equal(state.skipped, 3);
  });
});

describe('host port conflicts', () => {
  const state = parseTableListing(listing);
  const other = (portMappings: NftAttachment['portMappings'], ips = ['10.88.0.9/16', 'fd00:88::9/64']): NftAttachment =>
    ({ key: { containerID: 'new', ifname: 'eth0' }, ips, portMappings });

  it('finds a port mapped on any address by another attachment', () => {
    const c = findHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 8080, containerPort: 1, protocol: 'tcp' }]));
    assert.deepEqual(c.map((x) => `${x.family} ${x.hostPort}/${x.protocol} ${x.holder}`), ['4 8080/tcp a1b2c3d4e5f6/eth0', '6 8080/tcp a1b2c3d4e5f6/eth0']);
  });

  it('finds a specific address against an any-address mapping and the reverse', () => {
    assert.equal(findHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 8080, containerPort: 1, protocol: 'tcp', hostIP: '198.51.100.7' }])).length, 1);
    assert.equal(findHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 5353, containerPort: 1, protocol: 'udp' }])).length, 1);
    // sctp 9090 was mapped on 0.0.0.0: IPv4 only, so IPv6 is free.
    assert.equal(findHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 9090, containerPort: 1, protocol: 'sctp', hostIP: '::' }])).length, 0);
  });

  it('allows another protocol, another address, and the holder itself', () => {
    assert.equal(findHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 8080, containerPort: 1, protocol: 'udp' }])).length, 0);
    assert.equal(findHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 5353, containerPort: 1, protocol: 'udp', hostIP: '192.0.2.2' }])).length, 0);
    assert.equal(findHostPortConflicts(state, FIXTURE_NET, A).length, 0);
  });

  it('sees host ports of every network in the table', () => {
    const net2 = { ...FIXTURE_NET, name: 'othernet', bridge: 'cni-other', subnets: ['10.99.0.0/16'] };
    assert.equal(findHostPortConflicts(state, net2, other([{ hostPort: 8080, containerPort: 1, protocol: 'tcp' }], ['10.99.0.2/16'])).length, 1);
  });

  it('fails with code 101 naming the holder', () => {
    assert.throws(() => assertNoHostPortConflicts(state, FIXTURE_NET, other([{ hostPort: 8080, containerPort: 1, protocol: 'tcp' }])),
      (e: unknown) => e instanceof CniError && e.code === 101 && /8080\/tcp is already mapped by a1b2c3d4e5f6\/eth0/.test(e.message));
    assert.doesNotThrow(() => assertNoHostPortConflicts(state, FIXTURE_NET, other([])));
  });
});

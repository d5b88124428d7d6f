import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attachmentElements, buildAttachmentAdd, buildAttachmentDel, buildDocument, claimsOf } from './build-attachment.ts';
import { CniError } from '../cni/errors.ts';
import { assertGolden } from './testdata/golden.ts';
import { FIXTURE_ATTACHMENTS, FIXTURE_NET } from './testdata/fixtures.ts';
import type { NftAttachment } from './model.ts';

const [A, B] = FIXTURE_ATTACHMENTS;
type Cmd = Record<string, { element: { name: string; elem: unknown[] } }>;

describe('buildAttachmentAdd', () => {
  it('adds a dual-stack attachment with hostPorts (golden)', () => {
    assertGolden('golden-attachment-add.json', buildAttachmentAdd(FIXTURE_NET, A));
  });

  it('adds an attachment with a long container ID and a 0.0.0.0 hostIP (golden)', () => {
    assertGolden('golden-attachment-add-long.json', buildAttachmentAdd(FIXTURE_NET, B));
  });

  it('takes over address elements (add, delete, add) but creates hostport entries and claims', () => {
    const verbs = (buildAttachmentAdd(FIXTURE_NET, A) as Cmd[]).map((c) => `${Object.keys(c)[0]} ${Object.values(c)[0].element.name.replace(/_podnet_.*/, '')}`);
    assert.deepEqual(verbs.filter((v) => v.endsWith(' podaddrs4')), ['add podaddrs4', 'delete podaddrs4', 'add podaddrs4']);
    assert.deepEqual(verbs.filter((v) => v.includes('hostport')), [
      'create hostports4_any_addr', 'create hostports4_any_port', 'create hostports6_any_addr', 'create hostports6_any_port',
      'create hostports4_ip_addr', 'create hostports4_ip_port',
      'create hostport_claims4', 'create hostport_claims6',
      // 5353/udp on 192.0.2.1: probe that nobody holds 5353/udp on every address.
      'create hostport_claims4', 'delete hostport_claims4',
    ]);
  });

  it('probes the any-address claim for a specific hostIP, unless the attachment claims it itself', () => {
    const probes = (att: NftAttachment) => (buildAttachmentAdd(FIXTURE_NET, att) as Cmd[])
      .filter((c) => Object.keys(c)[0] === 'delete' && Object.values(c)[0].element.name.startsWith('hostport_claims'))
      .map((c) => JSON.stringify(Object.values(c)[0].element.elem));
    assert.deepEqual(probes(A), [JSON.stringify([[{ elem: { val: { concat: ['0.0.0.0', 'udp', 5353] }, comment: 'a1b2c3d4e5f6/eth0' } }, '10.88.0.2']])]);
    const both: NftAttachment = { ...A, portMappings: [
      { hostPort: 80, containerPort: 8080, protocol: 'tcp' },
      { hostPort: 80, containerPort: 8080, protocol: 'tcp', hostIP: '192.0.2.1' },
    ] };
    assert.deepEqual(probes(both), []);
  });

  it('in restore mode (resync) only adds: idempotent on an intact table, no probes', () => {
    const verbs = (buildAttachmentAdd(FIXTURE_NET, A, 'restore') as Cmd[]).map((c) => Object.keys(c)[0]);
    assert.ok(!verbs.includes('create'));
    assert.equal(verbs.filter((v) => v === 'delete').length, 4, 'only the address takeovers delete');
  });

  it('maps a port without hostIP in each family the pod has, with hostIP only in its family', () => {
    const hp = attachmentElements(FIXTURE_NET, A).filter((e) => e.kind === 'hostport');
    assert.deepEqual(hp.map((e) => e.kind === 'hostport' && `${e.family} ${e.hostIP} ${e.hostPort}->${e.podIP}:${e.containerPort}`), [
      '4 null 8080->10.88.0.2:80', '6 null 8080->fd00:88::2:80', '4 192.0.2.1 5353->10.88.0.2:53',
    ]);
  });

  it('has no hostport elements for a pod without port mappings', () => {
    const els = attachmentElements(FIXTURE_NET, { ...A, portMappings: [] });
    assert.deepEqual(els.map((e) => e.kind), ['podaddr', 'podaddr']);
  });

  it('canonicalises IPv6 addresses as nft prints them', () => {
    const els = attachmentElements(FIXTURE_NET, {
      ...A, ips: ['FD00:88:0::0002/64'], portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'udp', hostIP: 'FD00::0001' }],
    });
    assert.deepEqual(els.map((e) => (e.kind === 'podaddr' ? e.addr : e.kind === 'hostport' ? e.hostIP : e.kind === 'claim' ? e.podIP : e.addr)), ['fd00:88::2', 'fd00::1', 'fd00:88::2']);
  });

  it('merges identical mappings and rejects one host port mapped to two container ports', () => {
    const pm = { hostPort: 80, containerPort: 8080, protocol: 'tcp' as const };
    assert.equal(attachmentElements(FIXTURE_NET, { ...A, portMappings: [pm, pm] }).length,
      attachmentElements(FIXTURE_NET, { ...A, portMappings: [pm] }).length);
    assert.throws(() => attachmentElements(FIXTURE_NET, { ...A, portMappings: [pm, { ...pm, containerPort: 9090 }] }),
      (e: unknown) => e instanceof CniError && e.code === 7 && /mapped twice/.test(e.message));
  });

  it('rejects a hostIP whose family the pod has no address of, and bad ports', () => {
    const v4only: NftAttachment = { ...A, ips: ['10.88.0.2/16'] };
    assert.throws(() => buildAttachmentAdd(FIXTURE_NET, { ...v4only, portMappings: [{ hostPort: 1, containerPort: 1, protocol: 'tcp', hostIP: '2001:db8::1' }] }),
      (e: unknown) => e instanceof CniError && e.code === 7 && /IPv6/.test(e.message));
    assert.throws(() => buildAttachmentAdd(FIXTURE_NET, { ...A, portMappings: [{ hostPort: 0, containerPort: 1, protocol: 'tcp' }] }),
      (e: unknown) => e instanceof CniError && e.code === 7);
    assert.throws(() => buildAttachmentAdd(FIXTURE_NET, { ...A, ips: ['10.88.0.300/16'] }),
      (e: unknown) => e instanceof CniError && e.code === 7);
  });
});

describe('buildAttachmentDel', () => {
  it('adds then deletes every element, so a second DEL succeeds (golden)', () => {
    assertGolden('golden-attachment-del.json', buildAttachmentDel(FIXTURE_NET, attachmentElements(FIXTURE_NET, A)));
  });

  it('removes what a record says, claims included, with the data it expects (golden)', () => {
    const els = attachmentElements(FIXTURE_NET, A);
    const cmds = buildAttachmentDel(FIXTURE_NET, [...els, ...claimsOf(els)]);
    assertGolden('golden-attachment-del-recorded.json', cmds);
    // Every map element carries its data, so a key taken over by a new holder fails the add.
    for (const c of cmds as Cmd[]) {
      const { name, elem } = Object.values(c)[0].element;
      if (/^hostport/.test(name)) assert.ok(elem.every((e) => Array.isArray(e) && e.length === 2), name);
    }
  });

  it('claimsOf: one claim per hostport entry whose pod IP is known, any address as null', () => {
    const els = attachmentElements(FIXTURE_NET, A);
    assert.deepEqual(claimsOf(els).map((c) => c.kind === 'claim' && `${c.family} ${c.hostIP} ${c.protocol}/${c.hostPort} ${c.podIP}`), [
      '4 null tcp/8080 10.88.0.2', '6 null tcp/8080 fd00:88::2', '4 192.0.2.1 udp/5353 10.88.0.2',
    ]);
    assert.deepEqual(claimsOf([{ kind: 'hostport', family: 4, hostIP: null, protocol: 'tcp', hostPort: 1, podIP: null, containerPort: 1, comment: 'x' }]), []);
  });

  it('skips the missing half of a hostport pair', () => {
    const cmds = buildAttachmentDel(FIXTURE_NET, [{
      kind: 'hostport', family: 4, hostIP: null, protocol: 'tcp', hostPort: 8080, podIP: null, containerPort: 80, comment: 'x/eth0',
    }]) as Cmd[];
    assert.deepEqual(cmds.map((c) => Object.values(c)[0].element.name), ['hostports4_any_port_podnet_3aa0627f', 'hostports4_any_port_podnet_3aa0627f']);
  });

  it('returns nothing for no elements', () => {
    assert.deepEqual(buildAttachmentDel(FIXTURE_NET, []), []);
  });
});

describe('buildDocument', () => {
  it('puts the metainfo first', () => {
    assert.deepEqual(buildDocument([{ add: { table: { family: 'inet', name: 't' } } }]), {
      nftables: [{ metainfo: { json_schema_version: 1 } }, { add: { table: { family: 'inet', name: 't' } } }],
    });
  });
});

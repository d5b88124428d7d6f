import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attachmentElements, buildAttachmentAdd, buildAttachmentDel, buildDocument } from './build-attachment.ts';
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

  it('takes over address elements (add, delete, add) but only adds hostport entries', () => {
    const verbs = (buildAttachmentAdd(FIXTURE_NET, A) as Cmd[]).map((c) => `${Object.keys(c)[0]} ${Object.values(c)[0].element.name.replace(/_podnet_.*/, '')}`);
    assert.deepEqual(verbs.filter((v) => v.endsWith(' podaddrs4')), ['add podaddrs4', 'delete podaddrs4', 'add podaddrs4']);
    assert.deepEqual(verbs.filter((v) => v.includes('hostports')), [
      'add hostports4_any_addr', 'add hostports4_any_port', 'add hostports6_any_addr', 'add hostports6_any_port',
      'add hostports4_ip_addr', 'add hostports4_ip_port',
    ]);
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
    assert.deepEqual(els.map((e) => (e.kind === 'podaddr' ? e.addr : e.kind === 'hostport' ? e.hostIP : e.addr)), ['fd00:88::2', 'fd00::1', 'fd00:88::2']);
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

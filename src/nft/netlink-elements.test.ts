import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeAttrs, decodeMessages, encodeAttrs, encodeMessage } from '../netlink/codec.ts';
import { encodeBatch } from '../netlink/nfnetlink-batch.ts';
import { attachmentElements, claimsOf, planAttachmentAdd, planAttachmentDel } from './build-attachment.ts';
import { buildElementMessages, NFNL_SUBSYS_NFTABLES } from './netlink-elements.ts';
import { FIXTURE_ATTACHMENTS, FIXTURE_NET } from './testdata/fixtures.ts';

/** What nft 1.0.6 sent for the same transactions (testdata/capture-netlink.ts). */
const captured = JSON.parse(readFileSync(new URL('./testdata/netlink-batches-1.0.6.json', import.meta.url), 'utf8')) as Record<string, string>;
const NFTA_SET_ELEM_LIST_SET_ID = 4;

/**
 * nft's batch without NFTA_SET_ELEM_LIST_SET_ID, the one attribute Pier leaves out: nft numbers
 * every set it knows and sends the number along, which matters only for a set created in the
 * same batch.
 */
function withoutSetIds(hex: string): Buffer {
  const msgs = decodeMessages(Buffer.from(hex, 'hex')).map((m) => {
    if (m.type >> 8 !== NFNL_SUBSYS_NFTABLES) return m;
    const attrs = decodeAttrs(m.payload.subarray(4)).filter((a) => a.type !== NFTA_SET_ELEM_LIST_SET_ID);
    return { ...m, payload: Buffer.concat([m.payload.subarray(0, 4), encodeAttrs(attrs)]) };
  });
  return Buffer.concat(msgs.map(encodeMessage));
}

const [a, b] = FIXTURE_ATTACHMENTS;
const recorded = attachmentElements(FIXTURE_NET, a);
const cases = {
  'add-a': planAttachmentAdd(FIXTURE_NET, a),
  'add-b': planAttachmentAdd(FIXTURE_NET, b),
  'del-a': planAttachmentDel(FIXTURE_NET, [...recorded, ...claimsOf(recorded)]),
};

for (const [name, plan] of Object.entries(cases)) {
  test(`netlink batch for ${name} is byte for byte what nft 1.0.6 sends`, () => {
    // nft numbers its batch from 0 and asks for no ACKs; Pier asks for one per message.
    const ours = encodeBatch(NFNL_SUBSYS_NFTABLES, buildElementMessages(plan), 0, false);
    assert.equal(ours.toString('hex'), withoutSetIds(captured[name]).toString('hex'));
  });
}

test('the test strips only SET_ID: nft sent more bytes than Pier for adds', () => {
  assert.ok(Buffer.from(captured['add-a'], 'hex').length > withoutSetIds(captured['add-a']).length);
});

test('each message names its operation and set, and add/create/delete set the kernel flags', () => {
  const msgs = buildElementMessages(cases['add-a']);
  assert.equal(msgs.length, cases['add-a'].ops.length);
  const byVerb = new Map(cases['add-a'].ops.map((op, i) => [op.verb, msgs[i]]));
  assert.equal(byVerb.get('add')!.flags, 0x400);
  assert.equal(byVerb.get('create')!.flags, 0x600);
  assert.equal(byVerb.get('delete')!.flags, 0);
  assert.equal(byVerb.get('delete')!.op, 'NFT_MSG_DELSETELEM');
  assert.match(msgs[0].object, /^pier\/podaddrs4_podnet_/);
});

test('with ack every message of the batch asks for NLM_F_ACK, the frame does not', () => {
  const batch = decodeMessages(encodeBatch(NFNL_SUBSYS_NFTABLES, buildElementMessages(cases['del-a']), 7, true));
  assert.equal(batch[0].type, 0x10);
  assert.equal(batch[0].seq, 7);
  assert.equal(batch.at(-1)!.type, 0x11);
  assert.equal(batch.at(-1)!.seq, 7 + batch.length - 1);
  assert.ok(batch.slice(1, -1).every((m) => m.flags & 0x4));
  assert.ok(!(batch[0].flags & 0x4) && !(batch.at(-1)!.flags & 0x4));
});

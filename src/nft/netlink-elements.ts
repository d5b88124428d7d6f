// Pure builders of the nf_tables netlink messages for an element plan (build-attachment.ts):
// what `nft -j -f` 1.0.6 sends for the same JSON commands, byte for byte, except
// NFTA_SET_ELEM_LIST_SET_ID (nft's handle for sets created in the same batch; we create none).
// Constants keep their names from linux/netfilter/nf_tables.h and libnftnl's udata.h.
import { encodeAttrs, nla, type Attr } from '../netlink/codec.ts';
import { ipToBytes } from '../netlink/ip-bytes.ts';
import { NLM_F_CREATE, NLM_F_EXCL } from '../netlink/constants.ts';
import { encodeNfgenmsg, type NfMessage } from '../netlink/nfnetlink-batch.ts';
import type { ElementOp, ElementPlan, SetEntry } from './build-attachment.ts';
import type { Protocol } from './model.ts';

export const NFNL_SUBSYS_NFTABLES = 10;
export const NFT_MSG_NEWSETELEM = 12;
export const NFT_MSG_DELSETELEM = 14;
const NFPROTO = { inet: 1, ip: 2, ip6: 10 } as const;
const NFTA_SET_ELEM_LIST_TABLE = 1;
const NFTA_SET_ELEM_LIST_SET = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS = 3;
const NFTA_SET_ELEM_KEY = 1;
const NFTA_SET_ELEM_DATA = 2;
const NFTA_SET_ELEM_USERDATA = 6;
const NFTA_DATA_VALUE = 1;
const NFTNL_UDATA_SET_ELEM_COMMENT = 0;
/** IPPROTO_* numbers, as `inet_proto` holds them. */
const IPPROTO: Record<Protocol, number> = { tcp: 6, udp: 17, sctp: 132 };

/** The messages of `plan`, one per operation and in its order, for one nf_tables batch. */
export function buildElementMessages(plan: ElementPlan): NfMessage[] {
  return plan.ops.map((op) => elementMessage(plan, op));
}

function elementMessage(plan: ElementPlan, op: ElementOp): NfMessage {
  const del = op.verb === 'delete';
  const attrs = [
    nla.str(NFTA_SET_ELEM_LIST_TABLE, plan.table),
    nla.str(NFTA_SET_ELEM_LIST_SET, op.set),
    // libnftnl numbers the list's entries 1, 2, ...; the kernel ignores the type.
    nla.nested(NFTA_SET_ELEM_LIST_ELEMENTS, op.entries.map((e, i) => nla.nested(i + 1, elementAttrs(e, !del)))),
  ];
  const payload = Buffer.concat([encodeNfgenmsg(NFPROTO[plan.family]), encodeAttrs(attrs)]);
  return {
    type: (NFNL_SUBSYS_NFTABLES << 8) | (del ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM),
    // `add` tolerates an identical element; `create` (NLM_F_EXCL) fails with EEXIST on any.
    flags: del ? 0 : NLM_F_CREATE | (op.verb === 'create' ? NLM_F_EXCL : 0),
    payload,
    op: del ? 'NFT_MSG_DELSETELEM' : 'NFT_MSG_NEWSETELEM',
    object: `${plan.table}/${op.set}`,
  };
}

/** Key, map data (not on delete: the key alone names an element) and the comment. */
function elementAttrs({ el, half }: SetEntry, withData: boolean): Attr[] {
  const out = [nla.nested(NFTA_SET_ELEM_KEY, [nla.bytes(NFTA_DATA_VALUE, elementKeyBytes(el))])];
  const data = withData ? elementDataBytes({ el, half }) : undefined;
  if (data) out.push(nla.nested(NFTA_SET_ELEM_DATA, [nla.bytes(NFTA_DATA_VALUE, data)]));
  out.push(nla.bytes(NFTA_SET_ELEM_USERDATA, commentUdata(el.comment)));
  return out;
}

/** The key as nft lays out a concatenation: each field in network order, padded to 4 bytes. */
export function elementKeyBytes(el: SetEntry['el']): Buffer {
  switch (el.kind) {
    case 'podaddr':
      return ipToBytes(el.addr);
    case 'hairpin':
      return concatFields([ipToBytes(el.addr), protoBytes(el.protocol), serviceBytes(el.port)]);
    case 'hostport':
      return concatFields([...(el.hostIP ? [ipToBytes(el.hostIP)] : []), protoBytes(el.protocol), serviceBytes(el.hostPort)]);
    case 'claim':
      return concatFields([ipToBytes(el.hostIP ?? (el.family === 4 ? '0.0.0.0' : '::')), protoBytes(el.protocol), serviceBytes(el.hostPort)]);
  }
}

/** A map element's data: for a hostport the pod IP (half 0) or container port (half 1). */
function elementDataBytes({ el, half }: SetEntry): Buffer | undefined {
  if (el.kind === 'claim') return ipToBytes(el.podIP);
  if (el.kind !== 'hostport') return undefined;
  if (half === 0) return el.podIP === null ? undefined : ipToBytes(el.podIP);
  return el.containerPort === null ? undefined : serviceBytes(el.containerPort);
}

/** libnftnl's udata TLV list with one comment: type, length, NUL-terminated text. */
function commentUdata(comment: string): Buffer {
  const text = Buffer.concat([Buffer.from(comment, 'utf8'), Buffer.alloc(1)]);
  return Buffer.concat([Buffer.from([NFTNL_UDATA_SET_ELEM_COMMENT, text.length]), text]);
}

function concatFields(fields: Buffer[]): Buffer {
  return Buffer.concat(fields.map((f) => Buffer.concat([f, Buffer.alloc((4 - (f.length % 4)) % 4)])));
}

const protoBytes = (p: Protocol): Buffer => Buffer.from([IPPROTO[p]]);

function serviceBytes(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
}

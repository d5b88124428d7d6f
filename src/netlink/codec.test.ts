// Golden tests of the netlink codecs: hand-annotated request bytes, and kernel replies that
// decode to the expected fields and re-encode to the very same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeAttrs, decodeError, decodeMessages, encodeAttrs, encodeMessage, nla } from './codec.ts';
import { buildLinkDump, buildNewBridge, buildNewVeth, buildSetBridge, buildSetBridgePort, buildSetLink, decodeLinkMessage, encodeLinkMessage, linkFromMessage } from './link-codec.ts';
import { addressFromMessage, buildAddr, decodeAddrMessage, encodeAddrMessage } from './addr-codec.ts';
import { buildRoute, decodeRouteMessage, encodeRouteMessage, routeFromMessage } from './route-codec.ts';
import { IFA_F_NODAD } from './constants.ts';

/** Hex with spaces and `#` comments, one field per line, as an annotated dump reads. */
const hex = (s: string) => Buffer.from(s.replace(/#.*$/gm, '').replace(/\s+/g, ''), 'hex');
const kernel = JSON.parse(readFileSync(new URL('./testdata/kernel-replies.json', import.meta.url), 'utf8'));

test('RTM_NEWLINK bridge request, byte for byte', () => {
  assert.deepEqual(
    buildNewBridge({ name: 'br0', mtu: 1500 }),
    hex(`
      00 00 0000 00000000 00000000 00000000   # ifinfomsg: AF_UNSPEC, type 0, index 0, flags 0, change 0
      0800 0300 62723000                      # IFLA_IFNAME "br0\\0"
      0800 0400 dc050000                      # IFLA_MTU 1500
      1000 1280                               # IFLA_LINKINFO | NLA_F_NESTED, len 16
        0b00 0100 62726964676500 00           #   IFLA_INFO_KIND "bridge\\0" + 1 pad byte
    `),
  );
});

test('RTM_NEWLINK turning VLAN filtering on for an existing bridge, byte for byte', () => {
  assert.deepEqual(
    buildSetBridge({ index: 5, vlanFiltering: true }),
    hex(`
      00 00 0000 05000000 00000000 00000000   # ifinfomsg: AF_UNSPEC, index 5
      1c00 1280                               # IFLA_LINKINFO | NLA_F_NESTED, len 28
        0b00 0100 62726964676500 00           #   IFLA_INFO_KIND "bridge\\0" + 1 pad byte
        0c00 0280                             #   IFLA_INFO_DATA | NLA_F_NESTED, len 12
          0500 0700 01 000000                 #     IFLA_BR_VLAN_FILTERING 1 + 3 pad
    `),
  );
});

test('RTM_NEWLINK veth request with the peer born in another netns', () => {
  assert.deepEqual(
    buildNewVeth({ name: 'eth0', peer: { name: 'veth1', netnsFd: 7 } }),
    hex(`
      00 00 0000 00000000 00000000 00000000   # ifinfomsg
      0900 0300 6574683000 000000             # IFLA_IFNAME "eth0\\0" + 3 pad
      3c00 1280                               # IFLA_LINKINFO | NESTED, len 60
        0900 0100 7665746800 000000           #   IFLA_INFO_KIND "veth\\0" + 3 pad
        2c00 0280                             #   IFLA_INFO_DATA | NESTED, len 44
          2800 0180                           #     VETH_INFO_PEER | NESTED, len 40
            00 00 0000 00000000 00000000 00000000  # peer ifinfomsg
            0a00 0300 766574683100 0000       #       IFLA_IFNAME "veth1\\0" + 2 pad
            0800 1c00 07000000                #       IFLA_NET_NS_FD 7
    `),
  );
});

test('RTM_NEWLINK set master, up and promisc', () => {
  assert.deepEqual(
    buildSetLink({ index: 9, up: true, promisc: false, master: 3 }),
    hex(`
      00 00 0000 09000000 01000000 01010000   # ifinfomsg: index 9, flags IFF_UP, change IFF_UP|IFF_PROMISC
      0800 0a00 03000000                      # IFLA_MASTER 3
    `),
  );
});

test('RTM_SETLINK bridge port hairpin and isolation (AF_BRIDGE, nested IFLA_PROTINFO)', () => {
  assert.deepEqual(
    buildSetBridgePort({ index: 4, hairpin: true, isolated: true }),
    hex(`
      07 00 0000 04000000 00000000 00000000   # ifinfomsg: AF_BRIDGE, index 4
      1400 0c80                               # IFLA_PROTINFO | NESTED, len 20
        0500 0400 01 000000                   #   IFLA_BRPORT_MODE (hairpin) 1
        0500 2100 01 000000                   #   IFLA_BRPORT_ISOLATED 1
    `),
  );
});

test('RTM_GETLINK dump filtered by master and kind', () => {
  assert.deepEqual(
    buildLinkDump({ master: 2, kind: 'veth' }),
    hex(`
      00 00 0000 00000000 00000000 00000000
      0800 1d00 08000000                      # IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS
      0800 0a00 02000000                      # IFLA_MASTER 2
      1000 1280 0900 0100 7665746800 000000   # IFLA_LINKINFO { IFLA_INFO_KIND "veth" }
    `),
  );
});

test('RTM_NEWADDR IPv4 gets IFA_LOCAL, IFA_ADDRESS and a computed broadcast', () => {
  assert.deepEqual(
    buildAddr({ index: 5, cidr: '10.1.2.3/24' }),
    hex(`
      02 18 00 00 05000000                    # ifaddrmsg: AF_INET, /24, flags 0, scope universe, index 5
      0800 0200 0a010203                      # IFA_LOCAL 10.1.2.3
      0800 0100 0a010203                      # IFA_ADDRESS 10.1.2.3
      0800 0400 0a0102ff                      # IFA_BROADCAST 10.1.2.255
    `),
  );
});

test('RTM_NEWADDR IPv6 with nodad carries IFA_FLAGS', () => {
  assert.deepEqual(
    buildAddr({ index: 2, cidr: 'fd00::2/64', flags: IFA_F_NODAD }),
    hex(`
      0a 40 02 00 02000000                    # ifaddrmsg: AF_INET6, /64, IFA_F_NODAD, index 2
      1400 0100 fd000000000000000000000000000002  # IFA_ADDRESS fd00::2
      0800 0800 02000000                      # IFA_FLAGS IFA_F_NODAD
    `),
  );
});

test('RTM_NEWROUTE default route with mtu and advmss metrics', () => {
  assert.deepEqual(
    buildRoute({ dst: '0.0.0.0/0', gw: '10.1.2.1', mtu: 1400, advmss: 1360 }),
    hex(`
      02 00 00 00 fe 03 00 01 00000000        # rtmsg: AF_INET, dst/0, table main, proto boot, scope universe, unicast
      0800 0500 0a010201                      # RTA_GATEWAY 10.1.2.1
      1400 0800                               # RTA_METRICS, len 20
        0800 0200 78050000                    #   RTAX_MTU 1400
        0800 0800 50050000                    #   RTAX_ADVMSS 1360
    `),
  );
});

test('RTM_NEWROUTE on-link route in a table above 255 uses RTA_TABLE and scope link', () => {
  assert.deepEqual(
    buildRoute({ dst: '10.9.0.0/16', oif: 3, table: 1000, priority: 50 }),
    hex(`
      02 10 00 00 00 03 fd 01 00000000        # rtmsg: AF_INET, /16, table unspec, boot, scope link, unicast
      0800 0100 0a090000                      # RTA_DST 10.9.0.0
      0800 0400 03000000                      # RTA_OIF 3
      0800 0600 32000000                      # RTA_PRIORITY 50
      0800 0f00 e8030000                      # RTA_TABLE 1000
    `),
  );
});

test('kernel RTM_NEWLINK reply decodes and re-encodes to the same bytes', () => {
  const bytes = Buffer.from(kernel.link, 'hex');
  const msg = decodeLinkMessage(bytes);
  assert.deepEqual(encodeLinkMessage(msg), bytes);
  const link = linkFromMessage(msg);
  assert.equal(link.name, 'br-cap');
  assert.equal(link.kind, 'bridge');
  assert.equal(link.mac, '02:00:00:00:00:01');
  assert.equal(link.mtu, 1500);
  assert.equal(link.up, false);
  assert.equal(link.vlanFiltering, false, 'IFLA_BR_VLAN_FILTERING of a bridge is read');
  // Dozens of attributes Pier has no name for must all survive.
  assert.ok(msg.attrs.length > 20);
});

test('kernel RTM_NEWADDR and RTM_NEWROUTE replies round-trip', () => {
  const a = Buffer.from(kernel.addr, 'hex');
  const am = decodeAddrMessage(a);
  assert.deepEqual(encodeAddrMessage(am), a);
  assert.equal(addressFromMessage(am).cidr, '10.98.0.1/24');
  const r = Buffer.from(kernel.route, 'hex');
  const rm = decodeRouteMessage(r);
  assert.deepEqual(encodeRouteMessage(rm), r);
  const route = routeFromMessage(rm);
  assert.equal(route.table, 255);
  assert.ok(route.dst === '10.98.0.1/32' || route.dst === '10.98.0.255/32', route.dst);
});

test('unknown and flagged attributes survive a round trip', () => {
  const attrs = [
    { type: 999, data: Buffer.from([1, 2, 3]) },
    { type: 7, data: encodeAttrs([nla.u32(1, 42)]), nested: true },
    { type: 8, data: Buffer.from([0, 80]), netByteOrder: true },
  ];
  const bytes = encodeAttrs(attrs);
  assert.equal(bytes.length, 8 + 12 + 8);
  assert.deepEqual(decodeAttrs(bytes), attrs);
  assert.deepEqual(encodeAttrs(decodeAttrs(bytes)), bytes);
});

test('nlmsghdr framing and an extended-ACK error', () => {
  const req = encodeMessage({ type: 16, flags: 0x605, seq: 7, pid: 0, payload: Buffer.alloc(16) });
  assert.deepEqual(req.subarray(0, 16), hex('20000000 1000 0506 07000000 00000000'));
  // NLMSG_ERROR, flags NLM_F_CAPPED|NLM_F_ACK_TLVS: errno -22, the request header, NLMSGERR_ATTR_MSG.
  const err = hex(`
    34000000 0200 0003 07000000 2d090000    # len 52, NLMSG_ERROR, CAPPED|ACK_TLVS, seq 7
    eaffffff                                # error -EINVAL
    20000000 1000 0506 07000000 00000000    # the request's nlmsghdr (payload capped)
    1000 0100 ${Buffer.from('Invalid MTU\0').toString('hex')}  # NLMSGERR_ATTR_MSG
  `);
  const [m] = decodeMessages(err);
  assert.deepEqual(decodeError(m), { errno: 22, extack: 'Invalid MTU' });
});

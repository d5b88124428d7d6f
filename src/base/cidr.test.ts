// cidr.ts (over ip-cidr) against Go's parser, and against ip-math.ts (the hot path's own math).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import IPCIDR from 'ip-cidr';
import { Address6 } from 'ip-address';
import { containsIp, covers, hasHostBits, ipAt, overlaps, parseCidrStrict, parseIpStrict, sizeOf } from './cidr.ts';
import * as math from './ip-math.ts';
import { goVerdicts } from './testdata/go-golden.ts';
import { seededStrings } from './testdata/ip-samples.ts';

test('parseIpStrict and parseCidrStrict accept, refuse and print as Go does; IPv4-mapped refused', () => {
  for (const { sample, go } of goVerdicts()) {
    const ip = parseIpStrict(sample);
    if (go.ip.family === '0' || go.ip.family === '4m') assert.equal(ip, undefined, JSON.stringify(sample));
    else assert.deepEqual([ip?.family, ip?.text], [Number(go.ip.family), go.ip.text], JSON.stringify(sample));
    const c = parseCidrStrict(sample);
    if (go.cidr.family === '0' || go.cidr.family === '4m') assert.equal(c, undefined, JSON.stringify(sample));
    else assert.deepEqual([c?.family, c?.ip.text, c?.network], [Number(go.cidr.family), go.cidr.ip, go.cidr.network], JSON.stringify(sample));
  }
});

test('why the strict gate stands in front of the library', () => {
  // ip-cidr reads IPv6 text with a dotted tail as the IPv4 address after the last colon.
  assert.equal(IPCIDR.createAddress('64:ff9b::1.2.3.4').v4, true);
  assert.throws(() => new IPCIDR('64:ff9b::1.2.3.0/120'));
  assert.equal(parseCidrStrict('64:ff9b::1.2.3.0/120')?.network, '64:ff9b::102:300/120');
  // ip-address takes zones (Go's net.ParseIP does not); ip-cidr reads no leading zeros in a length.
  assert.equal(new Address6('fe80::1%eth0').correctForm(), 'fe80::1');
  assert.equal(parseIpStrict('fe80::1%eth0'), undefined);
  assert.throws(() => new IPCIDR('10.0.0.0/024'));
  assert.equal(parseCidrStrict('10.0.0.0/024')?.network, '10.0.0.0/24');
  // ip-cidr's contains() crosses families: 0.0.0.0/0 "contains" ::a.
  assert.equal(new IPCIDR('0.0.0.0/0').contains('::a'), true);
  assert.equal(containsIp(parseCidrStrict('0.0.0.0/0')!, parseIpStrict('::a')!), false);
  // IPv4-mapped, in any spelling, is refused: ip-cidr turns it into IPv4.
  assert.equal(new IPCIDR('::ffff:10.0.0.0/104').toString(), '10.0.0.0');
  for (const s of ['::ffff:10.0.0.0/104', '::ffff:a00:0/104', '0:0:0:0:0:ffff:a00:0/120']) assert.equal(parseCidrStrict(s), undefined, s);
});

test('edges: /0, /31, /32, /127, /128, host bits, offsets from both ends', () => {
  const cases: [string, string, bigint, string | undefined, string | undefined, boolean][] = [
    // text, network, size, ipAt(1), ipAt(-2), host bits
    ['0.0.0.0/0', '0.0.0.0/0', 1n << 32n, '0.0.0.1', '255.255.255.254', false],
    ['10.0.0.7/31', '10.0.0.6/31', 2n, '10.0.0.7', '10.0.0.6', true],
    ['10.0.0.7/32', '10.0.0.7/32', 1n, undefined, undefined, false],
    ['::/0', '::/0', 1n << 128n, '::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', false],
    ['fd00::2/127', 'fd00::2/127', 2n, 'fd00::3', 'fd00::2', false],
    ['fd00::3/128', 'fd00::3/128', 1n, undefined, undefined, false],
    ['10.22.0.5/24', '10.22.0.0/24', 256n, '10.22.0.1', '10.22.0.254', true],
  ];
  for (const [text, network, size, at1, atM2, hostBits] of cases) {
    const c = parseCidrStrict(text)!;
    assert.equal(c.network, network, text);
    assert.equal(sizeOf(c), size, text);
    assert.equal(ipAt(c, 1n)?.text, at1, text);
    assert.equal(ipAt(c, -2n)?.text, atM2, text);
    assert.equal(ipAt(c, 0n)?.text, network.split('/')[0], text);
    assert.equal(ipAt(c, size), undefined, `${text} past the end`);
    assert.equal(ipAt(c, -size - 1n), undefined, `${text} before the start`);
    assert.equal(hasHostBits(c), hostBits, text);
  }
  const p = (s: string) => parseCidrStrict(s)!;
  assert.equal(covers(p('10.0.0.0/8'), p('10.22.0.0/16')), true, 'a node CIDR inside the cluster CIDR');
  assert.equal(covers(p('10.22.0.0/16'), p('10.0.0.0/8')), false);
  assert.equal(covers(p('10.22.0.0/16'), p('10.22.0.0/16')), true);
  assert.equal(covers(p('10.0.0.0/16'), p('10.0.0.0/8')), false, 'the same network address, a longer prefix');
  assert.equal(covers(p('fd00::/64'), p('::/0')), false);
  assert.equal(overlaps(p('fd00::/64'), p('::/0')), true);
  assert.equal(covers(p('0.0.0.0/0'), p('::/0')), false);
  assert.equal(overlaps(p('10.22.0.0/24'), p('10.22.1.0/24')), false, 'adjacent');
  assert.equal(overlaps(p('10.22.1.0/24'), p('10.22.0.0/23')), true);
  assert.equal(overlaps(p('fd00::/64'), p('fd00::ffff:0:0:1/128')), true);
  assert.equal(containsIp(p('10.22.0.0/24'), parseIpStrict('10.22.0.255')!), true, 'a node address in its CIDR');
  assert.equal(containsIp(p('10.22.0.0/24'), parseIpStrict('10.22.1.0')!), false);
});

/** Seeded random prefixes and addresses of both families, lengths weighted to the edges. */
function randomCases(count: number): { a: string; b: string; ip: string }[] {
  const r = seededStrings(count * 4, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'], 0x2545f491);
  const lengths = [0, 1, 7, 8, 9, 15, 16, 23, 24, 25, 30, 31, 32, 63, 64, 65, 96, 120, 126, 127, 128];
  const out: { a: string; b: string; ip: string }[] = [];
  for (let i = 0; i < count; i++) {
    const v6 = i % 2 === 1;
    const digits = v6 ? 32 : 8;
    const hex = (s: string) => s.repeat(digits).slice(0, digits);
    const text = (h: string) => (v6 ? h.match(/.{4}/g)!.join(':') : h.match(/.{2}/g)!.map((x) => parseInt(x, 16)).join('.'));
    const [base, other, third, pick] = [hex(r[4 * i]), hex(r[4 * i + 1]), hex(r[4 * i + 2]), r[4 * i + 3]];
    const n = (k: number, mod: number) => parseInt(pick[k % pick.length], 16) * 7 + k * 3 + i;
    // b and ip share a random number of leading digits with a, so that overlap and containment
    // come out both ways often.
    const shareB = n(0, 0) % (digits + 1);
    const shareIp = n(1, 0) % (digits + 1);
    const len = (k: number) => Math.min(lengths[n(k, 0) % lengths.length], v6 ? 128 : 32);
    out.push({
      a: `${text(base)}/${len(2)}`,
      b: `${text(base.slice(0, shareB) + other.slice(shareB))}/${len(3)}`,
      ip: text(base.slice(0, shareIp) + third.slice(shareIp)),
    });
  }
  return out;
}

test('ip-cidr and ip-math agree on 3,000 random prefix pairs: network, last, containment, cover, overlap, offsets', () => {
  for (const { a, b, ip } of randomCases(3000)) {
    const [la, lb, lip] = [parseCidrStrict(a)!, parseCidrStrict(b)!, parseIpStrict(ip)!];
    const [ma, mb, mip] = [math.parseCidr(a)!, math.parseCidr(b)!, math.parseIp(ip)!];
    const where = `${a} ${b} ${ip}`;
    assert.equal(la.network, math.formatCidr({ ip: math.networkOf(ma), prefix: ma.prefix }), where);
    assert.equal(ipAt(la, -1n)!.text, math.formatIp(math.lastOf(ma)), where);
    assert.equal(hasHostBits(la), math.hasHostBits(ma), where);
    assert.equal(containsIp(la, lip), math.contains(ma, mip), where);
    assert.equal(overlaps(la, lb), math.overlaps(ma, mb), where);
    assert.equal(covers(la, lb), ma.prefix <= mb.prefix && math.contains(ma, mb.ip), where);
    if (sizeOf(la) > 2n) {
      assert.equal(ipAt(la, 1n)!.text, math.formatIp(math.addIp(math.networkOf(ma), 1n)), where);
      assert.equal(ipAt(la, -2n)!.text, math.formatIp(math.addIp(math.lastOf(ma), -1n)), where);
    }
  }
});

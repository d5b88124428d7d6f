import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addIp, canonicalIp, contains, formatCidr, formatIp, hasHostBits, lastOf, networkOf, notAnIpReason, overlaps,
  parseCidr, parseIp,
} from './ip-math.ts';
import { goVerdicts } from './testdata/go-golden.ts';

test('parseIp and formatIp: accepted and printed as Go does, IPv4-mapped refused', () => {
  let accepted = 0;
  for (const { sample, go } of goVerdicts()) {
    const ip = parseIp(sample);
    if (go.ip.family === '0' || go.ip.family === '4m') {
      assert.equal(ip, undefined, JSON.stringify(sample));
      continue;
    }
    accepted++;
    assert.ok(ip, JSON.stringify(sample));
    assert.equal(`${ip.family}`, go.ip.family, JSON.stringify(sample));
    // Go's IP.String() is RFC 5952 for IPv6.
    assert.equal(formatIp(ip), go.ip.text, JSON.stringify(sample));
  }
  assert.ok(accepted > 1000, `only ${accepted} accepted samples`);
});

test('parseCidr, networkOf: accepted and masked as Go does, IPv4-mapped refused', () => {
  let accepted = 0;
  for (const { sample, go } of goVerdicts()) {
    const c = parseCidr(sample);
    if (go.cidr.family === '0' || go.cidr.family === '4m') {
      assert.equal(c, undefined, JSON.stringify(sample));
      continue;
    }
    accepted++;
    assert.ok(c, JSON.stringify(sample));
    assert.equal(formatIp(c.ip), go.cidr.ip, JSON.stringify(sample));
    assert.equal(formatCidr({ ip: networkOf(c), prefix: c.prefix }), go.cidr.network, JSON.stringify(sample));
  }
  assert.ok(accepted > 400, `only ${accepted} accepted samples`);
});

test('canonical text: RFC 5952 for IPv6, dotted quad for IPv4', () => {
  const cases: [string, string | undefined][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['FD00:0:0:0:0:0:0:A', 'fd00::a'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::', '::'],
    ['::1.2.3.4', '::102:304'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['::ffff:1.2.3.4', undefined],
    ['::ffff:102:304', undefined],
    ['01.2.3.4', undefined],
    ['256.1.1.1', undefined],
    ['1::2::3', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['fe80::1%eth0', undefined],
    ['', undefined],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

test('prefix math: network, last address, host bits, containment, /0 to /32 and /128', () => {
  const c = parseCidr('10.22.0.0/24')!;
  assert.equal(formatIp(lastOf(c)), '10.22.0.255');
  assert.equal(hasHostBits(c), false);
  assert.equal(hasHostBits(parseCidr('10.22.0.1/24')!), true);
  assert.equal(formatCidr({ ip: networkOf(parseCidr('fd00::1:2/112')!), prefix: 112 }), 'fd00::1:0/112');
  assert.equal(contains(c, parseIp('10.22.0.77')!), true);
  assert.equal(contains(c, parseIp('10.22.1.0')!), false);
  assert.equal(contains(c, parseIp('::a16:5')!), false, 'families never mix');
  assert.equal(contains(parseCidr('0.0.0.0/0')!, parseIp('::a')!), false, 'not even under /0');
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
  assert.equal(parseCidr('10.0.0.0'), undefined);
  const edges: [string, string, string, boolean][] = [
    ['0.0.0.0/0', '0.0.0.0', '255.255.255.255', false],
    ['10.0.0.6/31', '10.0.0.6', '10.0.0.7', false],
    ['10.0.0.7/31', '10.0.0.6', '10.0.0.7', true],
    ['10.0.0.7/32', '10.0.0.7', '10.0.0.7', false],
    ['::/0', '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', false],
    ['fd00::3/127', 'fd00::2', 'fd00::3', true],
    ['fd00::3/128', 'fd00::3', 'fd00::3', false],
  ];
  for (const [text, first, last, hostBits] of edges) {
    const p = parseCidr(text)!;
    assert.equal(formatIp(networkOf(p)), first, text);
    assert.equal(formatIp(lastOf(p)), last, text);
    assert.equal(hasHostBits(p), hostBits, text);
    assert.equal(contains(p, parseIp(first)!), true, text);
    assert.equal(contains(p, parseIp(last)!), true, text);
  }
  assert.equal(contains(parseCidr('10.0.0.6/31')!, parseIp('10.0.0.8')!), false);
  assert.equal(contains(parseCidr('fd00::2/127')!, parseIp('fd00::1')!), false);
});

test('overlap: prefixes overlap when they agree on the shorter one', () => {
  const o = (a: string, b: string) => overlaps(parseCidr(a)!, parseCidr(b)!);
  assert.equal(o('10.0.0.0/8', '10.22.0.0/16'), true);
  assert.equal(o('10.22.0.0/16', '10.0.0.0/8'), true, 'symmetric');
  assert.equal(o('10.22.0.0/24', '10.22.1.0/24'), false, 'adjacent');
  assert.equal(o('10.22.0.0/23', '10.22.1.0/24'), true);
  assert.equal(o('0.0.0.0/0', '203.0.113.0/24'), true);
  assert.equal(o('0.0.0.0/0', '::/0'), false, 'families never overlap');
  assert.equal(o('fd00::/64', 'fd00::ffff:0:0:1/128'), true);
  assert.equal(o('fd00::/64', 'fd00:0:0:1::/64'), false);
  assert.equal(o('10.0.0.1/32', '10.0.0.1/32'), true);
});

test('offsets stay in the family; the refusals say why', () => {
  assert.equal(formatIp(addIp(parseIp('10.0.0.255')!, 1n)), '10.0.1.0');
  assert.equal(formatIp(addIp(parseIp('fd00::ffff')!, 1n)), 'fd00::1:0');
  assert.equal(formatIp(addIp(parseIp('fd00::1:0')!, -1n)), 'fd00::ffff');
  assert.match(notAnIpReason('::ffff:10.0.0.1', 'an IP address'), /IPv4-mapped/);
  assert.match(notAnIpReason('::ffff:a00:0/104', 'an ip/prefix'), /IPv4-mapped/);
  assert.equal(notAnIpReason('10.0.0.0', 'an ip/prefix'), 'is not an ip/prefix');
  assert.equal(notAnIpReason('banana', 'an IP address'), 'is not an IP address');
});

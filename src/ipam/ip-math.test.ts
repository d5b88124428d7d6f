import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, contains, formatCidr, hasHostBits, lastOf, networkOf, parseCidr, parseIp } from './ip-math.ts';

test('canonical text: RFC 5952 for IPv6, dotted quad for IPv4', () => {
  const cases: [string, string | undefined][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['FD00:0:0:0:0:0:0:A', 'fd00::a'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::', '::'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['01.2.3.4', undefined],
    ['256.1.1.1', undefined],
    ['1::2::3', undefined],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['fe80::1%eth0', undefined],
    ['', undefined],
  ];
  for (const [input, want] of cases) assert.equal(canonicalIp(input), want, input);
});

test('prefix math: network, last address, host bits, containment', () => {
  const c = parseCidr('10.22.0.0/24')!;
  assert.equal(formatCidr({ ip: lastOf(c), prefix: 24 }), '10.22.0.255/24');
  assert.equal(hasHostBits(c), false);
  assert.equal(hasHostBits(parseCidr('10.22.0.1/24')!), true);
  assert.equal(formatCidr({ ip: networkOf(parseCidr('fd00::1:2/112')!), prefix: 112 }), 'fd00::1:0/112');
  assert.equal(contains(c, parseIp('10.22.0.77')!), true);
  assert.equal(contains(c, parseIp('10.22.1.0')!), false);
  assert.equal(contains(c, parseIp('::a16:5')!), false, 'families never mix');
  assert.equal(parseCidr('10.0.0.0/33'), undefined);
  assert.equal(parseCidr('10.0.0.0'), undefined);
});

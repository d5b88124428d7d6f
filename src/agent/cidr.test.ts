import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containsCidr, containsIp, coverOf, overlaps, parseCidr, parseIp, subnetOf, type Cidr } from './cidr.ts';

const c = (t: string): Cidr => {
  const p = parseCidr(t);
  if (!p.ok) throw new Error(p.error);
  return p.value;
};

test('parseCidr: canonical networks of both families', () => {
  assert.deepEqual(parseCidr('10.244.1.0/24'), { ok: true, value: { text: '10.244.1.0/24', family: 4, prefix: 24, network: '10.244.1.0', first: 0x0af40100n, last: 0x0af401ffn } });
  const v6 = c('FD00:10:244:0001::/64');
  assert.equal(v6.text, 'fd00:10:244:1::/64');
  assert.equal(v6.last - v6.first, (1n << 64n) - 1n);
  assert.equal(c('0.0.0.0/0').last, 0xffffffffn);
});

test('parseCidr refuses what the API must not hand over', () => {
  for (const bad of ['10.244.1.5/24', '10.244.01.0/24', '10.244.1.0/33', '10.244.1.0', '10.244.1.0/24 ', ' 10.244.1.0/24', 'fd00::1%eth0/64', '::ffff:10.0.0.0/120', 'fd00::/129', 'cafe', '', '10.244.1.0/-1', '10.244.1.0/24/8']) {
    const p = parseCidr(bad);
    assert.equal(p.ok, false, bad);
  }
  assert.match((parseCidr('10.244.1.5/24') as { error: string }).error, /host bits set \(the network is 10\.244\.1\.0\/24\)/);
  assert.match((parseCidr('::ffff:10.0.0.0/120') as { error: string }).error, /IPv4-mapped IPv6/);
  assert.match((parseCidr('10.244.1.0/33') as { error: string }).error, /bad prefix length \(0-32\)/);
  assert.match((parseCidr('cafe') as { error: string }).error, /has no \/prefix/);
  // Go's net.ParseCIDR (and so the API server and the reference plugins) takes leading zeros
  // in the prefix length: the same network.
  assert.equal(c('10.244.1.0/024').text, '10.244.1.0/24');
});

test('overlap, containment and addresses never cross families', () => {
  assert.ok(overlaps(c('10.244.0.0/16'), c('10.244.3.0/24')));
  assert.ok(!overlaps(c('10.244.0.0/24'), c('10.244.1.0/24')));
  assert.ok(containsCidr(c('10.244.0.0/16'), c('10.244.3.0/24')));
  assert.ok(!containsCidr(c('10.244.3.0/24'), c('10.244.0.0/16')));
  assert.ok(containsIp(c('10.244.3.0/24'), '10.244.3.9'));
  assert.ok(!containsIp(c('::/0'), '10.244.3.9'), 'ip-cidr alone says yes here');
  assert.ok(!overlaps(c('::/0'), c('0.0.0.0/0')));
  assert.ok(!containsIp(c('10.0.0.0/8'), 'not-an-ip'));
  assert.equal(parseIp('fd00:0::0002')?.text, 'fd00::2');
});

test('subnetOf masks an interface address; coverOf drops nested networks', () => {
  assert.equal(subnetOf('203.0.113.7/24')?.text, '203.0.113.0/24');
  assert.equal(subnetOf('fd00:203::9/64')?.text, 'fd00:203::/64');
  assert.equal(subnetOf('nonsense/24'), undefined);
  assert.deepEqual(
    coverOf([c('10.244.1.0/24'), c('fd00:10:244::/56'), c('10.244.0.0/16'), c('10.9.0.0/24'), c('fd00:10:244:1::/64'), c('10.244.0.0/24')]).map((x) => x.text),
    ['10.9.0.0/24', '10.244.0.0/16', 'fd00:10:244::/56'],
  );
});

// Tests of the pure subnet helpers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { networkOf, sameSubnet } from './subnet.ts';

test('sameSubnet and networkOf', () => {
  assert.ok(sameSubnet('10.1.2.1/24', '10.1.2.200/24'));
  assert.ok(!sameSubnet('10.1.2.1/24', '10.1.3.1/24'));
  assert.ok(!sameSubnet('10.1.2.1/24', 'fd00::1/64'));
  assert.ok(sameSubnet('fd00:1::1/64', 'fd00:1::ffff/64'));
  assert.ok(sameSubnet('10.22.0.0/16', '10.22.9.9/24'), 'prefixes of different lengths');
  assert.ok(!sameSubnet('10.22.0.0/16', '10.23.0.1/32'));
  assert.ok(sameSubnet('0.0.0.0/0', '198.51.100.1'), 'a bare address is its /32');
  assert.equal(networkOf('10.1.2.3/20'), '10.1.0.0/20');
  assert.equal(networkOf('fd00:0:0:0:1::9/64'), 'fd00::/64');
  assert.equal(networkOf('10.1.2.3/32'), '10.1.2.3/32');
});

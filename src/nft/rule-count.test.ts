// The README's figure: a network's rules do not grow with its pods, and how many there are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNetworkSetup } from './build-network.ts';

const rules = (subnets: string[]) =>
  buildNetworkSetup({ name: 'n', bridge: 'br0', subnets, ipMasq: true, portMappings: true }).filter((c) => 'add' in c && 'rule' in (c.add as object)).length;

test('a network has 10 rules for IPv4, 16 dual stack, 9 IPv6 only (README, "Performance")', () => {
  assert.equal(rules(['10.1.0.0/24']), 10);
  assert.equal(rules(['10.1.0.0/24', 'fd00:1::/64']), 16);
  assert.equal(rules(['fd00:1::/64']), 9);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeClashes } from './route-clash.ts';

test('a pod subnet clashes with every host route it overlaps, either way round, in its own family', async () => {
  const routes = [
    { dst: '10.0.0.0/8', dev: 'wg0' },
    { dst: '10.22.0.128/25', dev: 'eth1' },
    { dst: '10.23.0.0/16', dev: 'eth2' },
    { dst: '203.0.113.7/32', dev: 'eth3' },
    { dst: 'fd00:22::/48', dev: 'eth4' },
    { dst: '::/1', dev: 'eth5' },
  ];
  const clashes = await routeClashes(['10.22.0.0/24', '198.51.100.0/24', 'fd00:22:0:1::/64', 'fd00:23::/64', 'banana', '203.0.113.0/24'], routes);
  assert.deepEqual([...clashes], [
    ['10.22.0.0/24', ['10.0.0.0/8 dev wg0', '10.22.0.128/25 dev eth1']],
    ['fd00:22:0:1::/64', ['fd00:22::/48 dev eth4']],
    ['203.0.113.0/24', ['203.0.113.7/32 dev eth3']],
  ]);
  assert.deepEqual([...(await routeClashes(['11.0.0.0/16', '::/0'], routes))], [['::/0', ['fd00:22::/48 dev eth4', '::/1 dev eth5']]]);
});

test('a route to the pod subnet\'s network address alone (the agent\'s VTEP address) is no clash; one more address is', async () => {
  const routes = [
    { dst: 'fd00:10:244::/128', dev: 'pier.vxlan' },
    { dst: '10.244.1.0/32', dev: 'pier.vxlan' },
    { dst: '10.244.2.1/32', dev: 'eth9' },
    { dst: '10.244.3.0/31', dev: 'eth8' },
  ];
  const clashes = await routeClashes(['fd00:10:244::/64', '10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24'], routes);
  assert.deepEqual([...clashes], [
    ['10.244.2.0/24', ['10.244.2.1/32 dev eth9']],
    ['10.244.3.0/24', ['10.244.3.0/31 dev eth8']],
  ]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpamConfig } from './config.ts';
import { CniError } from '../cni/errors.ts';

function rejects(raw: unknown, detailsIncludes: string, network = 'net'): void {
  assert.throws(
    () => parseIpamConfig(raw, network),
    (e: unknown) => {
      assert.ok(e instanceof CniError, String(e));
      assert.equal(e.code, 7);
      assert.ok(e.details.includes(detailsIncludes), `details ${JSON.stringify(e.details)} lack ${JSON.stringify(detailsIncludes)}`);
      return true;
    },
  );
}

test('defaults: gateway network+1, first skips it, last = broadcast-1 (v4) / last address (v6)', () => {
  const c = parseIpamConfig({ type: 'host-local', ranges: [[{ subnet: '10.22.0.0/24' }], [{ subnet: 'fd00:22::/120' }]] }, 'pier0');
  assert.deepEqual(c, {
    type: 'host-local',
    network: 'pier0',
    ranges: [
      [{ family: 4, subnet: '10.22.0.0/24', rangeStart: '10.22.0.2', rangeEnd: '10.22.0.254', gateway: '10.22.0.1' }],
      [{ family: 6, subnet: 'fd00:22::/120', rangeStart: 'fd00:22::2', rangeEnd: 'fd00:22::ff', gateway: 'fd00:22::1' }],
    ],
    routes: [],
    dataDir: '/var/lib/pier/networks',
  });
});

test('explicit gateway elsewhere keeps network+1 as the first address', () => {
  const c = parseIpamConfig({ ranges: [[{ subnet: '10.0.0.0/29', gateway: '10.0.0.6' }]] }, 'n');
  assert.deepEqual(c.ranges[0][0], { family: 4, subnet: '10.0.0.0/29', rangeStart: '10.0.0.1', rangeEnd: '10.0.0.6', gateway: '10.0.0.6' });
});

test('legacy top-level subnet becomes range set 0, before `ranges`', () => {
  const c = parseIpamConfig(
    { subnet: '10.1.0.0/16', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.20', gateway: '10.1.0.254', ranges: [[{ subnet: 'FD00::/64' }]] },
    'n',
  );
  assert.equal(c.ranges.length, 2);
  assert.deepEqual(c.ranges[0], [{ family: 4, subnet: '10.1.0.0/16', rangeStart: '10.1.0.10', rangeEnd: '10.1.0.20', gateway: '10.1.0.254' }]);
  assert.equal(c.ranges[1][0].subnet, 'fd00::/64');
  assert.equal(c.ranges[1][0].rangeEnd, 'fd00::ffff:ffff:ffff:ffff');
});

test('routes (with the 1.1 fields), dataDir, resolvConf, unknown keys tolerated', () => {
  const c = parseIpamConfig(
    {
      subnet: '10.0.0.0/24',
      routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.1.5/24', gw: '10.0.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 }],
      dataDir: '/run/pier/ipam/',
      resolvConf: '/etc/resolv.conf',
      somethingNew: true,
    },
    'n',
  );
  assert.deepEqual(c.routes, [
    { dst: '0.0.0.0/0' },
    { dst: '192.168.1.0/24', gw: '10.0.0.1', mtu: 1400, advmss: 1360, priority: 10, table: 100, scope: 0 },
  ]);
  assert.equal(c.dataDir, '/run/pier/ipam');
  assert.equal(c.resolvConf, '/etc/resolv.conf');
  assert.equal('somethingNew' in c, false);
});

test('adjacent ranges in one set are fine; a v4 set and a v6 set are fine', () => {
  const c = parseIpamConfig({ ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.100' }, { subnet: '10.0.0.0/24', rangeStart: '10.0.0.101', gateway: '10.0.0.1' }]] }, 'n');
  assert.equal(c.ranges[0].length, 2);
});

test('rejections name the path and the value', () => {
  rejects({ ranges: [[{ subnet: '10.0.0.1/24' }]] }, 'ipam.ranges[0][0].subnet: "10.0.0.1/24"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/31' }]] }, 'ipam.ranges[0][0].subnet: "10.0.0.0/31"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/32' }]] }, '/32');
  rejects({ ranges: [[{ subnet: 'fd00::/127' }]] }, '/127');
  rejects({ ranges: [[{ subnet: 'fd00::/128' }]] }, '/128');
  rejects({ ranges: [[{ subnet: 'banana' }]] }, 'ipam.ranges[0][0].subnet: "banana"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' }]] }, 'ipam.ranges[0][0].rangeStart: "10.0.1.5"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: '10.0.0.255' }]] }, 'ipam.ranges[0][0].rangeEnd: "10.0.0.255"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24', gateway: '10.1.0.1' }]] }, 'ipam.ranges[0][0].gateway: "10.1.0.1"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24', gateway: 'fd00::1' }]] }, 'gateway');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.50', rangeEnd: '10.0.0.10' }]] }, 'rangeStart');
  rejects({ subnet: '10.0.0.0/24', rangeStart: '10.0.0.0' }, 'ipam.rangeStart: "10.0.0.0"');
  rejects({ rangeStart: '10.0.0.5' }, 'ipam.rangeStart');
  // overlapping ranges, within a set and across sets
  rejects({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] }, 'ipam.ranges[1][0].subnet: "10.0.0.0/25"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/24', gateway: '10.0.0.1' }]] }, 'ipam.ranges[0][1].subnet');
  rejects({ subnet: '10.0.0.0/16', ranges: [[{ subnet: '10.0.5.0/24' }]] }, 'ipam.ranges[0][0].subnet');
  // a range set mixes no families
  rejects({ ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] }, 'ipam.ranges[0][1].subnet: "fd00::/64"');
  rejects({ ranges: [[]] }, 'ipam.ranges[0]: []');
  rejects({}, 'ipam: {}');
  rejects({ ranges: 'x' }, 'ipam.ranges: "x"');
  rejects({ ranges: [[{ subnet: 5 }]] }, 'ipam.ranges[0][0].subnet: 5');
  rejects({ subnet: '10.0.0.0/24', routes: [{ dst: '10.0.0.0' }] }, 'ipam.routes[0].dst: "10.0.0.0"');
  rejects({ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'fd00::1' }] }, 'ipam.routes[0].gw: "fd00::1"');
  rejects({ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', mtu: -1 }] }, 'ipam.routes[0].mtu: -1');
  rejects({ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', scope: 300 }] }, 'ipam.routes[0].scope: 300');
  rejects({ subnet: '10.0.0.0/24', dataDir: 'relative/dir' }, 'ipam.dataDir: "relative/dir"');
  rejects({ subnet: '10.0.0.0/24', dataDir: '/var/lib/../../etc' }, 'ipam.dataDir');
  rejects({ subnet: '10.0.0.0/24', dataDir: '/var/lib/pier\n' }, 'ipam.dataDir');
  rejects({ subnet: '10.0.0.0/24', resolvConf: 3 }, 'ipam.resolvConf: 3');
  rejects('not an object', 'ipam: "not an object"');
});

test('the network name must be usable as a directory name', () => {
  for (const name of ['', '../x', 'a/b', '.hidden', '-x', 'a b']) rejects({ subnet: '10.0.0.0/24' }, 'name:', name);
  assert.equal(parseIpamConfig({ subnet: '10.0.0.0/24' }, 'my-net_1.0').network, 'my-net_1.0');
});

test("addresses are read by Go's rules (host-local's): leading zeros, zones and IPv4-mapped forms are refused", () => {
  rejects({ ranges: [[{ subnet: '010.0.0.0/24' }]] }, 'ipam.ranges[0][0].subnet: "010.0.0.0/24"');
  rejects({ ranges: [[{ subnet: 'fe80::/64%eth0' }]] }, 'ipam.ranges[0][0].subnet');
  rejects({ ranges: [[{ subnet: 'fd00::/64', gateway: 'fd00::1%eth0' }]] }, 'ipam.ranges[0][0].gateway: "fd00::1%eth0"');
  rejects({ ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.010' }]] }, 'ipam.ranges[0][0].rangeStart: "10.0.0.010"');
  for (const subnet of ['::ffff:10.0.0.0/120', '::ffff:a00:0/120']) {
    assert.throws(() => parseIpamConfig({ ranges: [[{ subnet }]] }, 'n'), /IPv4-mapped IPv6 address/, subnet);
  }
  assert.throws(() => parseIpamConfig({ ranges: [[{ subnet: '10.0.0.0/24', gateway: '::ffff:10.0.0.1' }]] }, 'n'), /ipam.ranges\[0\]\[0\].gateway is an IPv4-mapped/);
  assert.throws(() => parseIpamConfig({ subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: '::ffff:10.0.0.1' }] }, 'n'), /IPv4-mapped/);
  // Go reads a prefix length's leading zeros, and so does Pier; the range is written canonically.
  const c = parseIpamConfig({ ranges: [[{ subnet: '10.22.0.0/024' }], [{ subnet: 'FD00:0:0:0::/064', rangeStart: 'fd00::0:10' }]] }, 'n');
  assert.equal(c.ranges[0][0].subnet, '10.22.0.0/24');
  assert.deepEqual(c.ranges[1][0], { family: 6, subnet: 'fd00::/64', rangeStart: 'fd00::10', rangeEnd: 'fd00::ffff:ffff:ffff:ffff', gateway: 'fd00::1' });
  // IPv6 with a dotted tail outside ::ffff:0:0/96 is plain IPv6, as in Go.
  assert.equal(parseIpamConfig({ ranges: [[{ subnet: '64:ff9b::1.2.3.0/120' }]] }, 'n').ranges[0][0].subnet, '64:ff9b::102:300/120');
});

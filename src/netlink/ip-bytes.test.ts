// Tests of address text <-> bytes, including RFC 5952 IPv6 formatting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesToIp, ipToBytes, macToBytes, macToString, parseCidr } from './ip-bytes.ts';

test('IPv4 and IPv6 round trips', () => {
  for (const ip of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '::', '::1', 'fd00::2', '2001:db8::1:0:0:1', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8']) {
    assert.equal(bytesToIp(ipToBytes(ip)), ip);
  }
  assert.equal(ipToBytes('10.1.2.3').toString('hex'), '0a010203');
  assert.equal(ipToBytes('fd00::2').toString('hex'), 'fd000000000000000000000000000002');
  assert.equal(ipToBytes('64:ff9b::1.2.3.4').toString('hex'), '0064ff9b000000000000000001020304');
  assert.equal(ipToBytes('0.0.0.0').toString('hex'), '00000000');
  assert.equal(ipToBytes('255.255.255.255').toString('hex'), 'ffffffff');
});

test('RFC 5952: longest zero run compressed, first on a tie, single zero groups kept', () => {
  assert.equal(bytesToIp(ipToBytes('2001:0db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(bytesToIp(ipToBytes('2001:db8:0:1:1:1:1:1')), '2001:db8:0:1:1:1:1:1');
  assert.equal(bytesToIp(ipToBytes('2001:0:0:1:0:0:0:1')), '2001:0:0:1::1');
});

test('bad input is refused', () => {
  assert.throws(() => ipToBytes('10.1.2'));
  assert.throws(() => ipToBytes('fd00:::1'));
  assert.throws(() => ipToBytes('::ffff:1.2.3.4'), /not an IP address/, 'IPv4-mapped: Go would take it for IPv4');
  assert.throws(() => ipToBytes('fe80::1%eth0'), /not an IP address/, 'no zones');
  assert.throws(() => ipToBytes('01.2.3.4'), /not an IP address/, 'no leading zeros');
  assert.throws(() => parseCidr('10.0.0.0/33'));
  assert.throws(() => parseCidr('10.0.0.0/x'));
  assert.throws(() => macToBytes('02:00:00:00:00'));
  assert.deepEqual(parseCidr('fd00::/64'), { ip: 'fd00::', prefix: 64, family: 6 });
  assert.equal(macToString(macToBytes('02-AA-00-00-00-01')), '02:aa:00:00:00:01');
});

// Pure address helpers of the test cluster harness.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, firstHost, httpsUrl, splitFamilies } from './net-util.ts';

test('splitFamilies takes one CIDR per family and refuses the rest', () => {
  assert.deepEqual(splitFamilies('10.244.0.0/16,fd00:244::/56'), { v4: '10.244.0.0/16', v6: 'fd00:244::/56' });
  assert.deepEqual(splitFamilies('fd00::/48'), { v6: 'fd00::/48' });
  assert.throws(() => splitFamilies('10.0.0.0/8,10.1.0.0/16'), /two IPv4/);
  assert.throws(() => splitFamilies('10.0.0.0'), /not a CIDR/);
  assert.throws(() => splitFamilies(''), /no CIDR/);
});

test('firstHost is the kubernetes Service ClusterIP of a service CIDR', () => {
  assert.equal(firstHost('10.96.0.0/16'), '10.96.0.1');
  assert.equal(firstHost('10.96.255.255/16'), '10.97.0.0');
  assert.equal(firstHost('fd00:10:96::/112'), 'fd00:10:96::1');
  assert.equal(firstHost('fd00:0:0:1::/64'), 'fd00:0:0:1::1');
});

test('cidrContains compares prefixes within one family', () => {
  assert.ok(cidrContains('10.244.0.0/16', '10.244.3.0/24'));
  assert.ok(!cidrContains('10.244.0.0/16', '10.245.0.0/24'));
  assert.ok(!cidrContains('10.244.0.0/16', '10.0.0.0/8'));
  assert.ok(cidrContains('fd00:244::/56', 'fd00:244:0:ff::/64'));
  assert.ok(!cidrContains('fd00:244::/56', 'fd00:244:0:100::/64'));
  assert.ok(!cidrContains('fd00:244::/56', '10.244.0.0/24'));
});

test('httpsUrl brackets IPv6 literals', () => {
  assert.equal(httpsUrl('127.0.0.1', 6443), 'https://127.0.0.1:6443');
  assert.equal(httpsUrl('fd00::1', 6443), 'https://[fd00::1]:6443');
});

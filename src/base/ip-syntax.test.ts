// The syntax gate against Go's net.ParseIP / net.ParseCIDR (go-ip-golden.txt) and node:net.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ipTextFamily, splitCidrText } from './ip-syntax.ts';
import { goVerdicts } from './testdata/go-golden.ts';
import { handPicked, randomAddresses } from './testdata/ip-samples.ts';

const verdicts = goVerdicts();

test('ipTextFamily accepts what Go net.ParseIP accepts, on 50,000 seeded strings and the edge cases', () => {
  assert.ok(verdicts.length > 70_000);
  for (const { sample, go } of verdicts) {
    // The gate is syntax only: IPv4-mapped text is IPv6 here (ip-math and cidr refuse it).
    const want = go.ip.family === '0' ? 0 : go.ip.family === '4' ? 4 : 6;
    assert.equal(ipTextFamily(sample), want, JSON.stringify(sample));
  }
});

test('splitCidrText accepts what Go net.ParseCIDR accepts, with the same prefix length', () => {
  for (const { sample, go } of verdicts) {
    const parts = splitCidrText(sample);
    if (go.cidr.family === '0') {
      assert.equal(parts, undefined, JSON.stringify(sample));
      continue;
    }
    assert.ok(parts, JSON.stringify(sample));
    assert.equal(parts.family, go.cidr.family === '4' ? 4 : 6, JSON.stringify(sample));
    assert.equal(parts.prefix, Number(go.cidr.network!.split('/')[1]), JSON.stringify(sample));
  }
  assert.deepEqual(splitCidrText('10.0.0.0/024'), { ip: '10.0.0.0', prefix: 24, family: 4 }, 'Go reads leading zeros in the length');
  assert.equal(splitCidrText('fe80::1%eth0/64'), undefined, 'no zones');
});

test('node:net agrees with the gate except for zones, which it accepts and Go refuses', () => {
  for (const s of [...handPicked, ...randomAddresses]) {
    const nodeFamily = s.includes('%') ? 0 : net.isIP(s);
    assert.equal(ipTextFamily(s), nodeFamily, JSON.stringify(s));
  }
  assert.equal(net.isIPv6('fe80::1%eth0'), true);
  assert.equal(ipTextFamily('fe80::1%eth0'), 0);
});

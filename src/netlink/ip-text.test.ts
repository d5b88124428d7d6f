import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ipVersion, isIPv4, isIPv6 } from './ip-text.ts';

const samples = [
  '', '.', '0.0.0.0', '10.1.2.3', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1.2.3.4.', '.1.2.3.4',
  '1..2.3', '1.2.3.-4', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.04', '1.2.3.4/24', '100.200.249.250', '1000.1.1.1', '1.2.3.a',
  '::', '::1', '1::', 'fd00::1', 'fd00::', 'FD00::ABCD', 'fe80::1%eth0', 'fe80::1%', 'fe80::1%eth 0', 'fe80::1%a.b:c-d',
  '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '::1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6::7', '1:2:3:4:5:6:7::8', ':::', '1:::2', '1::2::3', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '12345::1', 'g::1',
  '::ffff:1.2.3.4', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '1.2.3.4::',
  '::ffff:1.2.3', '::ffff:256.1.1.1', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4:5', 'fd00:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:0',
  '::ffff:01.2.3.4', 'a:b:c:d:e:f:a:b%1', '::%x', '%x', ':', '1:', ':1', '1.2.3.4%eth0',
];

test('ip-text answers as node:net does on hand-picked edge cases', () => {
  for (const s of samples) {
    assert.equal(isIPv4(s), net.isIPv4(s), `isIPv4(${JSON.stringify(s)})`);
    assert.equal(isIPv6(s), net.isIPv6(s), `isIPv6(${JSON.stringify(s)})`);
    assert.equal(ipVersion(s), net.isIP(s), `ipVersion(${JSON.stringify(s)})`);
  }
});

test('ip-text answers as node:net does on 50,000 random strings of address characters', () => {
  // A seeded generator: the same strings on every run.
  let seed = 0x9e3779b9;
  const rand = (n: number) => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return seed % n;
  };
  const alphabet = ['0', '1', '9', 'a', 'f', 'F', 'g', ':', '::', '.', '%', '25', '255', '256', '00', 'ffff', '1.2.3.4', 'e'];
  for (let n = 0; n < 50_000; n++) {
    let s = '';
    const len = 1 + rand(14);
    for (let i = 0; i < len; i++) s += alphabet[rand(alphabet.length)];
    assert.equal(isIPv4(s), net.isIPv4(s), `isIPv4(${JSON.stringify(s)})`);
    assert.equal(isIPv6(s), net.isIPv6(s), `isIPv6(${JSON.stringify(s)})`);
  }
});

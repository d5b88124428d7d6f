import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addrOfCidr, canonicalAddr, familyOf, parsePrefix } from './addr.ts';

describe('addr', () => {
  it('knows the family', () => {
    assert.equal(familyOf('10.0.0.1'), 4);
    assert.equal(familyOf('::1'), 6);
    assert.throws(() => familyOf('10.0.0.256'));
  });

  it('writes IPv6 the way nft prints it', () => {
    assert.equal(canonicalAddr('FD00:0:0:0::0002'), 'fd00::2');
    assert.equal(canonicalAddr('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
    assert.equal(canonicalAddr('2001:db8:1:0:1:1:1:1'), '2001:db8:1:0:1:1:1:1');
    assert.equal(canonicalAddr('10.1.2.3'), '10.1.2.3');
  });

  it('masks CIDRs to their network', () => {
    assert.deepEqual(parsePrefix('10.88.7.9/16'), { family: 4, addr: '10.88.0.0', len: 16 });
    assert.deepEqual(parsePrefix('fd00:88::5/64'), { family: 6, addr: 'fd00:88::', len: 64 });
    assert.deepEqual(parsePrefix('fd00:88:1:2:3:4:5:6/56'), { family: 6, addr: 'fd00:88:1::', len: 56 });
    assert.deepEqual(parsePrefix('0.0.0.0/0'), { family: 4, addr: '0.0.0.0', len: 0 });
    assert.deepEqual(parsePrefix('10.0.0.1'), { family: 4, addr: '10.0.0.1', len: 32 });
    assert.throws(() => parsePrefix('10.0.0.0/33'));
    assert.throws(() => parsePrefix('10.0.0.0/x'));
    assert.equal(addrOfCidr('FD00::2/64'), 'fd00::2');
  });
});

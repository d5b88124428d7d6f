import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findDropForwardChains } from './forward-check.ts';
import { readFixture } from './testdata/golden.ts';

describe('findDropForwardChains', () => {
  it('reports another table dropping in forward (captured nft -j list chains)', () => {
    assert.deepEqual(findDropForwardChains(readFixture('list-chains-1.0.6.json')), [{ family: 'ip', table: 'filter', chain: 'FORWARD' }]);
  });

  it('ignores our own table, accept policies, other hooks and junk', () => {
    const listing = { nftables: [
      { chain: { family: 'inet', table: 'pier', name: 'f', hook: 'forward', policy: 'drop' } },
      { chain: { family: 'ip', table: 'x', name: 'in', hook: 'input', policy: 'drop' } },
      { chain: { family: 'ip', table: 'x', name: 'regular' } },
      { rule: { family: 'ip', table: 'x', chain: 'f', expr: [] } },
      'junk', null,
    ] };
    assert.deepEqual(findDropForwardChains(listing), []);
    assert.deepEqual(findDropForwardChains(listing, 'pier_test'), [{ family: 'inet', table: 'pier', chain: 'f' }]);
    assert.deepEqual(findDropForwardChains(undefined), []);
  });
});

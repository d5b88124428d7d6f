import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chainAcceptsBridge, describeForwardBlockers, findDropForwardChains } from './forward-check.ts';
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

// Captured from nft 1.0.6: `nft -j list chain inet fw ff` after
//   iifname "br0" accept; oifname "pt*" counter accept; iifname { "a", "br0" } accept;
//   ct state established,related accept
const CAPTURED_CHAIN = { nftables: [
  { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
  { chain: { family: 'inet', table: 'fw', name: 'ff', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'drop' } },
  { rule: { family: 'inet', table: 'fw', chain: 'ff', handle: 2, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'br0' } }, { accept: null }] } },
  { rule: { family: 'inet', table: 'fw', chain: 'ff', handle: 3, expr: [{ match: { op: '==', left: { meta: { key: 'oifname' } }, right: 'pt*' } }, { counter: { packets: 0, bytes: 0 } }, { accept: null }] } },
  { rule: { family: 'inet', table: 'fw', chain: 'ff', handle: 5, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: { set: ['a', 'br0'] } } }, { accept: null }] } },
  { rule: { family: 'inet', table: 'fw', chain: 'ff', handle: 6, expr: [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }] } },
] };

describe('chainAcceptsBridge', () => {
  it('finds accepts by exact name, wildcard and set (captured nft -j list chain)', () => {
    assert.deepEqual(chainAcceptsBridge(CAPTURED_CHAIN, 'br0'), { in: true, out: false });
    assert.deepEqual(chainAcceptsBridge(CAPTURED_CHAIN, 'pt12br'), { in: false, out: true });
    assert.deepEqual(chainAcceptsBridge(CAPTURED_CHAIN, 'a'), { in: true, out: false });
    assert.deepEqual(chainAcceptsBridge(CAPTURED_CHAIN, 'cni0'), { in: false, out: false });
  });

  it('ignores matches without accept, negations, an escaped star and junk', () => {
    const rule = (expr: unknown[]) => ({ rule: { family: 'ip', table: 't', chain: 'c', expr } });
    const iif = (op: string, right: unknown) => ({ match: { op, left: { meta: { key: 'iifname' } }, right } });
    const listing = { nftables: [
      rule([iif('==', 'br0'), { drop: null }]),
      rule([iif('!=', 'br0'), { accept: null }]),
      rule([iif('==', 'br\\*'), { accept: null }]),
      null, 'junk', { rule: { expr: 'x' } },
    ] };
    assert.deepEqual(chainAcceptsBridge(listing, 'br0'), { in: false, out: false });
    assert.deepEqual(chainAcceptsBridge(listing, 'br*'), { in: true, out: false });
    assert.deepEqual(chainAcceptsBridge(undefined, 'br0'), { in: false, out: false });
  });
});

describe('describeForwardBlockers', () => {
  it('names the chains and gives the rules that would fix it', () => {
    const msg = describeForwardBlockers({ bridge: 'cni0' }, [
      { family: 'ip', table: 'filter', chain: 'FORWARD', missing: ['in', 'out'] },
      { family: 'inet', table: 'fw', chain: 'ff', missing: ['out'] },
    ]);
    assert.match(msg, /bridge cni0 is dropped by the forward chain ip filter FORWARD, inet fw ff \(policy drop\)/);
    assert.match(msg, /nft insert rule ip filter FORWARD iifname "cni0" accept; nft insert rule ip filter FORWARD oifname "cni0" accept/);
    assert.match(msg, /set that chain's policy to accept/);
  });
});

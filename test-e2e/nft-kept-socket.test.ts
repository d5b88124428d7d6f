// The nf_tables socket that applies element batches stays open for the process (closing one
// waits for an RCU grace period), so it must follow the netns: a batch sent from another netns
// goes through a socket of that netns. Pier runs in-process here, switched into two throwaway
// netns in turn; nothing touches this machine's own ruleset.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, inNs, run, uniquePrefix } from './helpers.ts';
import { inNetns, namedNetnsPath } from '../src/netlink/netns.ts';
import { applyElementBatch, closeElementSocket } from '../src/nft/netlink-apply.ts';
import type { ElementPlan } from '../src/nft/build-attachment.ts';

describe('the kept nf_tables socket', () => {
  const prefix = uniquePrefix();
  const cleanup = new Cleanup();
  const [a, b] = [`${prefix}-a`, `${prefix}-b`];
  const table = `pier_kept_${prefix}`;

  before(() => {
    for (const ns of [a, b]) {
      run('ip', ['netns', 'add', ns]);
      cleanup.addNetns(ns);
      run('ip', ['netns', 'exec', ns, 'nft', '-f', '/dev/stdin'], { input: `table inet ${table} {\n  set s { type ipv4_addr; }\n}\n` });
    }
  });

  after(() => {
    closeElementSocket();
    cleanup.runAll();
  });

  const plan = (addr: string): ElementPlan => ({
    family: 'inet',
    table,
    ops: [{ verb: 'add', set: 's', entries: [{ el: { kind: 'podaddr', family: 4, addr, comment: `c/${addr}` }, half: 0 }] }],
  });
  const elements = (ns: string) => run('ip', ['netns', 'exec', ns, 'nft', 'list', 'set', 'inet', table, 's']);

  it('sends each batch to the netns it is made in, also when switching back and forth', () => {
    inNetns(namedNetnsPath(a), () => applyElementBatch(plan('198.51.100.1')));
    inNetns(namedNetnsPath(b), () => applyElementBatch(plan('198.51.100.2')));
    inNetns(namedNetnsPath(a), () => applyElementBatch(plan('198.51.100.3')));
    inNetns(namedNetnsPath(a), () => applyElementBatch(plan('198.51.100.4')));
    const inA = elements(a);
    const inB = elements(b);
    for (const ip of ['198.51.100.1', '198.51.100.3', '198.51.100.4']) assert.match(inA, new RegExp(ip.replaceAll('.', '\\.')), `${ip} in ${a}`);
    assert.doesNotMatch(inA, /198\.51\.100\.2/);
    assert.match(inB, /198\.51\.100\.2/);
    assert.doesNotMatch(inB, /198\.51\.100\.[134]/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildNetworkSetup, setupMarkerOf } from './build-network.ts';
import { CniError } from '../cni/errors.ts';
import { assertGolden } from './testdata/golden.ts';
import { FIXTURE_NET } from './testdata/fixtures.ts';

type Cmd = Record<string, Record<string, Record<string, unknown>>>;
const rulesOf = (cmds: unknown[], chainPrefix: string) =>
  (cmds as Cmd[]).filter((c) => c.add?.rule && String(c.add.rule.chain).startsWith(chainPrefix));

describe('buildNetworkSetup', () => {
  it('builds a dual-stack network with masquerade and port mappings (golden)', () => {
    assertGolden('golden-network-dual.json', buildNetworkSetup(FIXTURE_NET));
  });

  it('builds an IPv4-only network without masquerade (golden)', () => {
    assertGolden('golden-network-v4-nomasq.json', buildNetworkSetup({
      name: 'cbr0', bridge: 'cbr0', subnets: ['10.244.1.0/24', '10.245.0.0/16'], ipMasq: false, portMappings: true, table: 'pier_test',
    }));
  });

  it('orders the commands: table, chains, sets, flushes, rules, then the setup marker', () => {
    const all = buildNetworkSetup(FIXTURE_NET) as Cmd[];
    const cmds = all.slice(0, -1);
    const kinds = cmds.map((c) => `${Object.keys(c)[0]} ${Object.keys(Object.values(c)[0])[0]}`);
    const firstRule = kinds.indexOf('add rule');
    assert.equal(kinds[0], 'add table');
    assert.deepEqual(kinds.slice(1, 5), Array(4).fill('add chain'));
    assert.deepEqual(kinds.slice(5, 19), Array(14).fill('add map').fill('add set', 0, 4));
    assert.deepEqual(kinds.slice(19, 23), Array(4).fill('flush chain'));
    assert.equal(firstRule, 23);
    assert.ok(kinds.slice(firstRule).every((k) => k === 'add rule'));
    // Sets and maps are never flushed: they hold the attachments' elements.
    assert.ok(!kinds.includes('flush set') && !kinds.includes('flush map'));
  });

  it('ends with a marker set named after a hash of the setup, which changes with the config', () => {
    const marker = setupMarkerOf(buildNetworkSetup(FIXTURE_NET));
    assert.match(marker, /^setup_\S+_[0-9a-f]{8}$/);
    assert.equal(setupMarkerOf(buildNetworkSetup(FIXTURE_NET)), marker, 'stable for the same config');
    assert.notEqual(setupMarkerOf(buildNetworkSetup({ ...FIXTURE_NET, ipMasq: !FIXTURE_NET.ipMasq })), marker);
    assert.notEqual(setupMarkerOf(buildNetworkSetup({ ...FIXTURE_NET, subnets: ['10.99.0.0/24'] })), marker);
  });

  it('has a fixed number of rules: 16 for dual stack with every feature', () => {
    const cmds = buildNetworkSetup(FIXTURE_NET);
    assert.equal(rulesOf(cmds, 'postrouting_').length, 5);
    assert.equal(rulesOf(cmds, 'prerouting_').length, 4);
    assert.equal(rulesOf(cmds, 'output_').length, 4);
    assert.equal(rulesOf(cmds, 'forward_').length, 3);
  });

  it('leaves out DNAT and hairpin rules without portMappings, masquerade without ipMasq', () => {
    const cmds = buildNetworkSetup({ ...FIXTURE_NET, ipMasq: false, portMappings: false });
    assert.equal(rulesOf(cmds, 'postrouting_').length, 0);
    assert.equal(rulesOf(cmds, 'prerouting_').length, 0);
    assert.equal(rulesOf(cmds, 'output_').length, 0);
    assert.equal(rulesOf(cmds, 'forward_').length, 3);
  });

  it('clears host bits of subnets in the masquerade exclusion', () => {
    const cmds = buildNetworkSetup({ ...FIXTURE_NET, subnets: ['10.88.0.1/16'] });
    assert.match(JSON.stringify(rulesOf(cmds, 'postrouting_')[0]), /"addr":"10\.88\.0\.0","len":16/);
  });

  it('uses the table given, default pier', () => {
    const [def] = buildNetworkSetup(FIXTURE_NET) as Cmd[];
    assert.deepEqual(def, { add: { table: { family: 'inet', name: 'pier' } } });
    const [t] = buildNetworkSetup({ ...FIXTURE_NET, table: 'pier_test_1' }) as Cmd[];
    assert.deepEqual(t, { add: { table: { family: 'inet', name: 'pier_test_1' } } });
  });

  it('rejects bad input with code 7', () => {
    for (const bad of [
      { ...FIXTURE_NET, subnets: ['10.88.0.0/33'] },
      { ...FIXTURE_NET, subnets: ['nonsense'] },
      { ...FIXTURE_NET, subnets: [] },
      { ...FIXTURE_NET, bridge: 'a-bridge-name-too-long' },
      { ...FIXTURE_NET, table: 'bad table' },
    ]) {
      assert.throws(() => buildNetworkSetup(bad), (e: unknown) => e instanceof CniError && e.code === 7, JSON.stringify(bad));
    }
  });
});

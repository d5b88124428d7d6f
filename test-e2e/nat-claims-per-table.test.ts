// hostPort claims are per nftables table (FIELDS.md, nftTable): a port held in one table is
// refused to a second pod of any network in that table (101), but networks in different tables
// do not see each other's. Run by dist/pier in a TestWorld's host netns.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';

const worlds = new Worlds();
before(() => ensureBuilt());
after(() => worlds.cleanupAll());

test('the same hostPort in two tables is allowed; in one table it is refused with 101', () => {
  const w: TestWorld = worlds.make();
  const ports = { capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18555, containerPort: 80, protocol: 'tcp' }] } };
  const a = w.conf('1.0.0', { extra: ports });
  // A second network with its own name, bridge, subnet and table.
  const base = w.conf('1.0.0', { subnet: '10.214.0.0/24', extra: ports });
  const b = { ...base, name: `${w.prefix}net2`, bridge: `${w.prefix}br2`, nftTable: `pier_test_${w.prefix}_2` };
  const c = { ...b, nftTable: a.nftTable };
  const pods = [w.addPod(), w.addPod(), w.addPod()];
  const add = (conf: object, n: number) => w.call({ command: 'ADD', containerId: `pt-${n}`, netns: w.netnsPath(pods[n]), ifname: 'eth0' }, conf);
  ok(add(a, 0), 'ADD in table 1');
  ok(add(b, 1), 'ADD of the same hostPort in table 2');
  const e = fails(add(c, 2), 101, 'ADD of the same hostPort in table 1, from another network');
  assert.match(e.msg, /18555/);
  for (const [conf, n] of [[a, 0], [b, 1]] as const) {
    ok(w.call({ command: 'DEL', containerId: `pt-${n}`, netns: w.netnsPath(pods[n]), ifname: 'eth0' }, conf), 'DEL');
  }
  for (const t of [a.nftTable, b.nftTable]) w.exec('nft', ['delete', 'table', 'inet', t]);
});

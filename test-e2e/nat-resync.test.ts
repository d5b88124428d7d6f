// `resync` (src/cli/resync.ts) against a TestWorld: two pods with port mappings and masquerade,
// Pier's table flushed, deleted, or the whole ruleset flushed inside the world's host netns;
// traffic fails, resync (run inside that netns) brings it back, and no link, address or route
// of the host or the pods changes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ensureBuilt, ROOT, TestWorld } from './cni-harness.ts';
import { ipJson } from './helpers.ts';
import { addOutside, HOST_OUT, OUTSIDE, ruleCount, startServer, tableText, talk } from './nat-fixtures.ts';
import { networkSuffix } from '../src/nft/names.ts';
import type { ResyncReport } from '../src/cli/resync.ts';
import { listAttachments } from '../src/ipam/ipam.ts';

const V = '1.0.0';
const SUBNET = '10.215.0.0/24';

describe('pier resync rebuilds the NAT table from the store', () => {
  let world: TestWorld;
  let table: string;
  let outside: string;
  let podA: string;
  let podB: string;
  let addrA: string;

  const conf = (portMappings: unknown[]) =>
    world.conf(V, { subnet: SUBNET, extra: { ipMasq: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings } } });

  /** Runs resync inside the world's host netns, as `pier resync --data-dir` would run there. */
  function runResync(extra: Record<string, unknown> = {}): ResyncReport {
    const code = `import { resync } from ${JSON.stringify(`${ROOT}/src/cli/resync.ts`)};
      const r = await resync({ dataDir: ${JSON.stringify(world.dataDir)}, ...${JSON.stringify(extra)} });
      process.stdout.write(JSON.stringify(r));`;
    const r = spawnSync('ip', ['netns', 'exec', world.host, process.execPath, '--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: ROOT, encoding: 'utf8', timeout: 60_000,
    });
    assert.equal(r.status, 0, `resync failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /** Every link, address and route of the host and both pods (what resync must not touch). */
  const wiring = () =>
    JSON.stringify([world.host, podA, podB].map((ns) => [
      ipJson(ns, 'addr', 'show').map(({ ifname, address, master, operstate, addr_info }: any) =>
        ({ ifname, address, master, operstate, addrs: addr_info.map((a: any) => `${a.local}/${a.prefixlen}`) })),
      ipJson(ns, 'route', 'show'),
    ]));

  const elements = () => {
    const items = JSON.parse(tableText(world, table) || '{"nftables":[]}').nftables as any[];
    return items.filter((i) => i.set || i.map).map((i) => JSON.stringify((i.set ?? i.map).elem ?? [])).sort();
  };

  const works = () => {
    assert.equal(talk(outside, 'tcp', HOST_OUT, 18080), OUTSIDE, 'outside -> pod A hostPort');
    assert.equal(talk(outside, 'udp', HOST_OUT, 18091), OUTSIDE, 'outside -> pod B udp hostPort');
    assert.equal(talk(podA, 'tcp', OUTSIDE, 9000), HOST_OUT, 'pod A masqueraded');
    assert.equal(talk(world.host, 'tcp', '127.0.0.1', 18090), `${SUBNET.split('.').slice(0, 3).join('.')}.1`, 'host 127.0.0.1 -> pod B');
  };
  // Broken in the way that matters, with an answer each time (no timeout taken as proof): the
  // host itself refuses the hostPort (no DNAT), and the outside host, which routes the pod
  // subnet back, answers pod A and names pod A's own address (no masquerade).
  const broken = () => {
    assert.equal(talk(outside, 'tcp', HOST_OUT, 18080), 'ERR ECONNREFUSED', 'outside -> hostPort not DNATed');
    assert.equal(talk(podA, 'tcp', OUTSIDE, 9000), addrA, 'pod A not masqueraded');
  };

  let wiringBefore: string;
  let elementsBefore: string[];
  let rulesBefore: number;

  before(async () => {
    ensureBuilt();
    world = new TestWorld();
    table = `pier_test_${world.prefix}`;
    outside = addOutside(world, { routeBack: [SUBNET] });
    podA = world.addPod();
    podB = world.addPod();
    const mappings = {
      [podA]: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }],
      [podB]: [{ hostPort: 18090, containerPort: 8080, protocol: 'tcp' }, { hostPort: 18091, containerPort: 5353, protocol: 'udp' }],
    };
    for (const pod of [podA, podB]) {
      const r = world.call({ command: 'ADD', containerId: `${pod}-ctr`, netns: world.netnsPath(pod), ifname: 'eth0' }, conf(mappings[pod]));
      assert.equal(r.status, 0, r.stdout + r.stderr);
      if (pod === podA) addrA = r.json.ips[0].address.split('/')[0];
      await startServer(world, pod, 8080, 5353);
    }
    await startServer(world, outside, 9000, 9053);
    works();
    wiringBefore = wiring();
    elementsBefore = elements();
    rulesBefore = ruleCount(world, table);
  });

  after(() => world?.cleanup.runAll());

  it('records what resync needs in each attachment record', () => {
    const records = listAttachments(world.dataDir);
    assert.equal(records.length, 2);
    for (const r of records) assert.deepEqual(r.extra.nft, { subnets: [SUBNET], table });
  });

  it('on an intact table changes nothing', () => {
    const report = runResync();
    assert.deepEqual(report.tables, [table]);
    assert.equal(report.networks, 1);
    assert.equal(report.attachments, 2);
    // A: address + (hostport + hairpin); B: address + 2 x (hostport + hairpin).
    assert.equal(report.elements, 8);
    assert.deepEqual(report.skipped, []);
    assert.deepEqual(elements(), elementsBefore);
    assert.equal(ruleCount(world, table), rulesBefore);
  });

  for (const [what, cmd] of [
    ['nft flush table', ['flush', 'table', 'inet']],
    ['nft delete table', ['delete', 'table', 'inet']],
    ['nft flush ruleset', ['flush', 'ruleset']],
  ] as const) {
    it(`after \`${what}\` traffic fails, and resync brings it back without touching links or addresses`, () => {
      const r = world.exec('nft', cmd[0] === 'flush' && cmd[1] === 'ruleset' ? [...cmd] : [...cmd, table]);
      assert.equal(r.status, 0, r.stderr);
      broken();
      const report = runResync();
      assert.equal(report.attachments, 2);
      assert.equal(ruleCount(world, table), rulesBefore);
      assert.deepEqual(elements(), elementsBefore);
      works();
      assert.equal(wiring(), wiringBefore);
    });
  }

  it('with prune, removes elements no record lists; without, keeps them', () => {
    const set = `podaddrs4_${networkSuffix(world.conf(V).name)}`;
    const r = world.exec('nft', ['add', 'element', 'inet', table, set, '{ 10.215.0.200 comment "ghost/eth0" }']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(runResync().pruned, 0);
    assert.ok(tableText(world, table).includes('ghost/eth0'));
    assert.equal(runResync({ prune: true }).pruned, 1);
    assert.ok(!tableText(world, table).includes('ghost/eth0'));
    assert.deepEqual(elements(), elementsBefore);
    works();
  });

  it('only rebuilds the table it is asked for', () => {
    world.exec('nft', ['delete', 'table', 'inet', table]);
    const report = runResync({ table: 'pier_test_other' });
    assert.deepEqual(report, { tables: [], networks: 0, attachments: 0, elements: 0, pruned: 0, skipped: [] });
    assert.equal(tableText(world, table), '');
    assert.deepEqual(runResync({ table }).tables, [table]);
    works();
  });
});

// Host ports are taken by the kernel, not by a lock: ADD creates its hostport entries and the
// table-wide claims inside its one nft transaction, so of two concurrent ADDs of one port exactly
// one wins and the other fails whole with 101 naming the winner. DEL removes what the record
// says without listing, and must never remove a new holder's entries. dist/pier runs as a
// runtime runs it, in a TestWorld.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ensureBuilt, TestWorld, type CniReply } from './cni-harness.ts';
import { ipJson } from './helpers.ts';
import { tableElements } from './nft-state.ts';
import { listAttachments } from '../src/ipam/ipam.ts';

const V = '1.0.0';
const SUBNET = '10.216.0.0/24';
const SUBNET2 = '10.216.1.0/24';

describe('host ports claimed atomically by the kernel', () => {
  let world: TestWorld;
  let table: string;

  const conf = (portMappings: unknown[], second = false) =>
    world.conf(V, {
      subnet: second ? SUBNET2 : SUBNET,
      extra: {
        ipMasq: true,
        capabilities: { portMappings: true },
        runtimeConfig: { portMappings },
        // A second network in the same table: its own bridge, chains and maps.
        ...(second && { name: `${world.prefix}net2`, bridge: `${world.prefix}b2` }),
      },
    });
  const call = (command: 'ADD' | 'DEL', id: string, pod: string, portMappings: unknown[], second = false) =>
    world.call({ command, containerId: id, netns: world.netnsPath(pod), ifname: 'eth0' }, conf(portMappings, second));
  const spawnAdd = (id: string, pod: string, portMappings: unknown[]): Promise<CniReply> =>
    new Promise((resolve) => {
      const child = world.spawn({ command: 'ADD', containerId: id, netns: world.netnsPath(pod), ifname: 'eth0' }, conf(portMappings));
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (status) => resolve({ status, stdout, stderr, json: stdout.trim() ? JSON.parse(stdout) : undefined }));
    });
  /** `set value comment` of every element of the table, for `comment` or all. */
  const elements = (comment?: string): string[] =>
    tableElements(world.host, table, comment)
      .map((e) => `${e.set} ${JSON.stringify(e.key)}${e.data === undefined ? '' : ` : ${e.data}`} ${e.comment}`)
      .sort();
  const records = () => listAttachments(world.dataDir).map((r) => r.containerID).sort();

  before(() => {
    ensureBuilt();
    world = new TestWorld();
    table = `pier_test_${world.prefix}`;
  });

  after(() => world?.cleanup.runAll());

  it('of two concurrent ADDs of one hostPort exactly one wins; the other gets 101 naming it and leaves nothing', async () => {
    for (let round = 0; round < 4; round++) {
      const port = 18200 + round;
      const pods = [world.addPod(), world.addPod()];
      const ids = pods.map((_, i) => `${world.prefix}-race${round}-${i}`);
      const mapping = [{ hostPort: port, containerPort: 80, protocol: 'tcp' }];
      const recordsBefore = records();
      const replies = await Promise.all(pods.map((pod, i) => spawnAdd(ids[i], pod, mapping)));
      const winners = replies.map((r, i) => (r.status === 0 ? i : -1)).filter((i) => i >= 0);
      assert.equal(winners.length, 1, `round ${round}: ${replies.map((r) => r.stdout + r.stderr).join(' | ')}`);
      const [w] = winners;
      const l = 1 - w;
      assert.equal(replies[l].json.code, 101, replies[l].stdout);
      assert.match(replies[l].json.msg, new RegExp(`hostPort ${port}/tcp is already mapped by ${ids[w]}/eth0`));
      // The loser's transaction failed whole, and ADD undid the rest.
      assert.deepEqual(elements(`${ids[l]}/eth0`), [], 'no element of the loser');
      assert.deepEqual(ipJson(pods[l], 'link', 'show').map((x: { ifname: string }) => x.ifname), ['lo']);
      assert.deepEqual(records(), [...recordsBefore, ids[w]].sort());
      assert.ok(elements(`${ids[w]}/eth0`).some((e) => e.startsWith('hostport_claims4 ')), 'the winner holds the claim');
      const d = call('DEL', ids[w], pods[w], mapping);
      assert.equal(d.status, 0, d.stdout + d.stderr);
      assert.deepEqual(elements(`${ids[w]}/eth0`), []);
    }
  });

  it('a hostPort held in another network of the table, or on every address, is refused (101)', () => {
    const [pa, pb, pc] = [world.addPod(), world.addPod(), world.addPod()];
    const [a, b, c] = ['net-a', 'net-b', 'net-c'].map((s) => `${world.prefix}-${s}`);
    const r = call('ADD', a, pa, [{ hostPort: 18300, containerPort: 80, protocol: 'tcp' }]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const other = call('ADD', b, pb, [{ hostPort: 18300, containerPort: 80, protocol: 'tcp' }], true);
    assert.equal(other.json?.code, 101, other.stdout + other.stderr);
    assert.match(other.json.msg, new RegExp(`18300/tcp is already mapped by ${a}/eth0`));
    const specific = call('ADD', c, pc, [{ hostPort: 18300, containerPort: 80, protocol: 'tcp', hostIP: '198.51.100.9' }]);
    assert.equal(specific.json?.code, 101, specific.stdout + specific.stderr);
    assert.deepEqual([...elements(`${b}/eth0`), ...elements(`${c}/eth0`)], []);
    assert.equal(call('DEL', a, pa, []).status, 0);
    assert.deepEqual(elements(`${a}/eth0`), []);
  });

  it('a DEL after a takeover does not remove the new holder\'s entries', () => {
    const [pa, pb] = [world.addPod(), world.addPod()];
    const [a, b] = [`${world.prefix}-old`, `${world.prefix}-new`];
    const mapping = [{ hostPort: 18400, containerPort: 80, protocol: 'tcp' }, { hostPort: 18401, containerPort: 53, protocol: 'udp', hostIP: '198.51.100.9' }];
    const ra = call('ADD', a, pa, mapping);
    assert.equal(ra.status, 0, ra.stdout + ra.stderr);
    // The table vanishes (`nft flush ruleset`, nobody ran resync) and a new pod maps the same
    // ports; pod A's record still says it holds them.
    assert.equal(world.exec('nft', ['delete', 'table', 'inet', table]).status, 0);
    const rb = call('ADD', b, pb, mapping);
    assert.equal(rb.status, 0, rb.stdout + rb.stderr);
    const held = elements(`${b}/eth0`);
    assert.ok(held.length >= 8, held.join('\n'));
    const all = elements();
    const d = call('DEL', a, pa, mapping);
    assert.equal(d.status, 0, d.stdout + d.stderr);
    assert.deepEqual(elements(), all, 'the DEL of the old holder changed nothing');
    assert.ok(!records().includes(a));
    // The new holder's own DEL removes everything.
    assert.equal(call('DEL', b, pb, mapping).status, 0);
    assert.deepEqual(elements(`${b}/eth0`), []);
  });
});

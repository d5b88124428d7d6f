// Issue 6: an ADD or DEL of a network whose nft objects exist is one nf_tables netlink batch
// sent by Pier itself, no nft process; what it writes reads back through `nft -j list table`
// exactly as what the JSON path (`nft -j -f`) writes for the same attachment.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, PIER, TestWorld, type CniCall } from './cni-harness.ts';
import { tableText } from './nat-fixtures.ts';
import { buildAttachmentAdd, buildDocument } from '../src/nft/build-attachment.ts';
import type { NftAttachment, NftNetwork } from '../src/nft/model.ts';

const V = '1.0.0';
const SUBNET = '10.217.0.0/24';

describe('element changes as netlink batches, without nft', () => {
  let world: TestWorld;
  let table: string;
  const conf = (portMappings: unknown[]) =>
    world.conf(V, { subnet: SUBNET, extra: { ipMasq: true, capabilities: { portMappings: true }, runtimeConfig: { portMappings } } });
  const call = (command: 'ADD' | 'DEL', id: string, pod: string, portMappings: unknown[]) =>
    world.call({ command, containerId: id, netns: world.netnsPath(pod), ifname: 'eth0' }, conf(portMappings));

  /** Runs the plugin under `strace -f -e trace=execve`; returns its status and the programs it ran. */
  const traced = (c: CniCall, stdin: unknown) => {
    const trace = join(world.dataDir, `trace-${c.command}-${c.containerId}`);
    const env = Object.entries(world.env(c)).map(([k, v]) => `${k}=${v}`);
    const r = spawnSync('ip', ['netns', 'exec', world.host, 'strace', '-f', '-qq', '-e', 'trace=execve', '-o', trace, 'env', '-i', ...env, PIER], {
      input: JSON.stringify(stdin),
      encoding: 'utf8',
    });
    const execs = readFileSync(trace, 'utf8').split('\n').map((l) => /execve\("([^"]+)"/.exec(l)?.[1]).filter((p): p is string => !!p);
    return { status: r.status, out: r.stdout + r.stderr, execs };
  };

  /** Every set and map of the table with its elements sorted (the kernel's order is a hash's). */
  const sets = (): unknown[] => {
    const text = tableText(world, table);
    assert.ok(text, `table ${table} is missing`);
    return (JSON.parse(text).nftables as Record<string, any>[])
      .filter((o) => o.set || o.map)
      .map((o) => {
        const s = { ...(o.set ?? o.map) };
        s.elem = (s.elem ?? []).map((e: unknown) => JSON.stringify(e)).sort();
        return s;
      });
  };

  before(() => {
    ensureBuilt();
    world = new TestWorld();
    table = `pier_test_${world.prefix}`;
  });

  after(() => world?.cleanup.runAll());

  it('a second ADD and its DEL run no nft; the first ADD sets the network up with nft', () => {
    const mapping = [{ hostPort: 18500, containerPort: 80, protocol: 'tcp' }];
    const [p0, p1] = [world.addPod(), world.addPod()];
    const first = traced({ command: 'ADD', containerId: `${world.prefix}-n0`, netns: world.netnsPath(p0), ifname: 'eth0' }, conf([]));
    assert.equal(first.status, 0, first.out);
    assert.ok(first.execs.some((p) => p.endsWith('/nft')), `the first ADD sets up with nft: ${first.execs.join(' ')}`);

    const id = `${world.prefix}-n1`;
    const add = traced({ command: 'ADD', containerId: id, netns: world.netnsPath(p1), ifname: 'eth0' }, conf(mapping));
    assert.equal(add.status, 0, add.out);
    assert.ok(add.execs.some((p) => p.endsWith('/pier')), `strace saw the plugin start: ${add.execs.join(' ')}`);
    assert.deepEqual(add.execs.filter((p) => p.endsWith('/nft')), [], 'no nft on the second ADD');
    const mine = JSON.stringify(sets()).split(`${id}/eth0`).length - 1;
    assert.ok(mine >= 5, `podaddr, hairpin, two hostport maps and the claim: ${mine}`);

    const del = traced({ command: 'DEL', containerId: id, netns: world.netnsPath(p1), ifname: 'eth0' }, conf(mapping));
    assert.equal(del.status, 0, del.out);
    assert.deepEqual(del.execs.filter((p) => p.endsWith('/nft')), [], 'no nft on the DEL');
    assert.ok(!JSON.stringify(sets()).includes(`${id}/eth0`), 'every element of the attachment is gone');
  });

  it('a changed network config is applied: its setup marker is missing, so ADD goes the nft way', () => {
    // Same network, masquerade switched off (a port mapping keeps NAT needed): the fast path
    // must not keep the old rules.
    const noMasq = { ...conf([{ hostPort: 18600, containerPort: 80, protocol: 'tcp' }]), ipMasq: false };
    const pod = world.addPod();
    const id = `${world.prefix}-cfg`;
    const r = traced({ command: 'ADD', containerId: id, netns: world.netnsPath(pod), ifname: 'eth0' }, noMasq);
    assert.equal(r.status, 0, r.out);
    assert.ok(r.execs.some((p) => p.endsWith('/nft')), `the new setup went through nft: ${r.execs.join(' ')}`);
    const rules = (JSON.parse(tableText(world, table)!).nftables as Record<string, any>[]).filter((o) => o.rule);
    const podMasq = rules.filter((x) => x.rule.chain.startsWith('postrouting_') && JSON.stringify(x.rule.expr).includes('@podaddrs4'));
    assert.deepEqual(podMasq, [], 'the pod-address masquerade rule is gone');
    const del = world.call({ command: 'DEL', containerId: id, netns: world.netnsPath(pod), ifname: 'eth0' }, noMasq);
    assert.equal(del.status, 0, del.stdout);
  });

  it('the netlink batch writes what the JSON path writes, and DEL removes exactly that', () => {
    const pod = world.addPod();
    const id = `${world.prefix}-cmp`;
    const mapping = [
      { hostPort: 18510, containerPort: 80, protocol: 'tcp' },
      { hostPort: 18511, containerPort: 53, protocol: 'udp', hostIP: '198.51.100.9' },
      { hostPort: 18512, containerPort: 9000, protocol: 'sctp', hostIP: '0.0.0.0' },
    ];
    const before = sets();
    const r = call('ADD', id, pod, mapping);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const viaNetlink = sets();
    assert.notDeepEqual(viaNetlink, before);

    const d = call('DEL', id, pod, mapping);
    assert.equal(d.status, 0, d.stdout + d.stderr);
    assert.deepEqual(sets(), before, 'the netlink DEL removes what the netlink ADD added');

    // The same attachment through `nft -j -f`, as the JSON builder has it.
    const c = conf(mapping);
    const net: NftNetwork = { name: c.name, bridge: c.bridge, subnets: [SUBNET], ipMasq: true, portMappings: true, table };
    const att: NftAttachment = {
      key: { containerID: id, ifname: 'eth0' },
      ips: r.json.ips.map((ip: { address: string }) => ip.address),
      portMappings: mapping as NftAttachment['portMappings'],
    };
    const doc = join(world.dataDir, 'json-path.json');
    writeFileSync(doc, JSON.stringify(buildDocument(buildAttachmentAdd(net, att))));
    const j = world.exec('nft', ['-j', '-f', doc]);
    assert.equal(j.status, 0, j.stderr);
    assert.deepEqual(viaNetlink, sets(), 'identical elements, data and comments');
  });
});

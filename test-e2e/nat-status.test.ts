// STATUS and ADD when NAT cannot work: another table's forward chain with policy drop (code 50
// naming it, and the traffic really is dropped), nft built without JSON (a fake nft first in
// PATH), and no nft at all (a tmpfs over /usr/sbin in a private mount namespace). ADD of a
// NAT network then fails saying what to install and leaves nothing behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBuilt, PIER, TestWorld, type CniCall, type CniReply } from './cni-harness.ts';
import { ipJson } from './helpers.ts';
import { addOutside, HOST_OUT, OUTSIDE, startServer, tableText, talk } from './nat-fixtures.ts';
import { listAttachments } from '../src/ipam/ipam.ts';

const V = '1.1.0';

describe('STATUS and ADD when NAT cannot work', () => {
  let world: TestWorld;
  let outside: string;
  let pod0: string;
  let fakeDir: string;
  const fw = () => `${world.prefix}_fw`;

  const conf = (extra: Record<string, unknown> = {}) =>
    world.conf(V, { subnet: '10.216.0.0/24', extra: { ipMasq: true, capabilities: { portMappings: true }, ...extra } });
  const status = (env: Record<string, string> = {}, c = conf()) => world.call({ command: 'STATUS', extraEnv: env }, c);
  const hostLinks = () => ipJson(world.host, 'link', 'show').map((l: { ifname: string }) => l.ifname).sort();

  /** Runs the plugin as world.call does, but with /usr/sbin (and so /sbin) hidden under a tmpfs
   * in a private mount namespace: a host without nft or conntrack. */
  function callWithoutSbin(call: CniCall, stdin: unknown): CniReply {
    const env = Object.entries(world.env(call)).map(([k, v]) => `${k}=${v}`);
    const r = spawnSync('ip', ['netns', 'exec', world.host, 'unshare', '-m', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs pier-test-nosbin /usr/sbin && exec "$@"', 'sh', 'env', '-i', ...env, PIER], {
      input: JSON.stringify(stdin), encoding: 'utf8', timeout: 60_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: r.stdout.trim() ? JSON.parse(r.stdout) : undefined };
  }

  /** ADD of a pod with masquerade and a hostPort must fail with `msg` and change nothing. */
  function assertAddFailsCleanly(call: (c: CniCall, s: unknown) => CniReply, extraEnv: Record<string, string>, msg: RegExp, fix: RegExp) {
    const pod = world.addPod();
    const linksBefore = hostLinks();
    const tableBefore = tableText(world, `pier_test_${world.prefix}`);
    const id = `${pod}-ctr`;
    const r = call({ command: 'ADD', containerId: id, netns: world.netnsPath(pod), ifname: 'eth0', extraEnv },
      conf({ runtimeConfig: { portMappings: [{ hostPort: 18100, containerPort: 80, protocol: 'tcp' }] } }));
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.json.msg, msg);
    assert.match(`${r.json.msg} ${r.json.details}`, fix);
    assert.deepEqual(hostLinks(), linksBefore);
    assert.deepEqual(ipJson(pod, 'link', 'show').map((l: { ifname: string }) => l.ifname), ['lo']);
    assert.ok(!listAttachments(world.dataDir).some((a) => a.containerID === id), 'no record left');
    assert.equal(tableText(world, `pier_test_${world.prefix}`), tableBefore);
  }

  before(async () => {
    ensureBuilt();
    world = new TestWorld();
    outside = addOutside(world);
    // One working pod first: the bridge and table exist, so "nothing behind" is about the new pod.
    pod0 = world.addPod();
    const r = world.call({ command: 'ADD', containerId: `${pod0}-ctr`, netns: world.netnsPath(pod0), ifname: 'eth0' }, conf());
    assert.equal(r.status, 0, r.stdout + r.stderr);
    await startServer(world, outside, 9000, 9053);
    fakeDir = join(world.dataDir, 'fake-bin');
    mkdirSync(fakeDir);
    writeFileSync(join(fakeDir, 'nft'), [
      '#!/bin/sh',
      'case "$1" in --version|-v) echo "nftables v1.0.6 (Lester Gooch #5)"; exit 0;; esac',
      'echo "Error: JSON support not compiled-in" >&2',
      'exit 1',
    ].join('\n'));
    chmodSync(join(fakeDir, 'nft'), 0o755);
  });

  after(() => world?.cleanup.runAll());

  it('STATUS is 0 on a healthy host, even with PATH unset (nft found in /usr/sbin)', () => {
    const r = status();
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('another table dropping forwarded traffic: STATUS 50 naming the chain and the fix; traffic really drops', () => {
    assert.equal(talk(pod0, 'tcp', OUTSIDE, 9000), HOST_OUT);
    for (const args of [
      ['add', 'table', 'inet', fw()],
      ['add', 'chain', 'inet', fw(), 'ff', '{ type filter hook forward priority 0; policy drop; }'],
    ]) assert.equal(world.exec('nft', args).status, 0);
    world.cleanup.add(() => world.exec('nft', ['delete', 'table', 'inet', fw()]));
    const r = status();
    assert.equal(r.status, 1);
    assert.equal(r.json.code, 50, r.stdout);
    assert.match(r.json.msg, new RegExp(`forward chain inet ${fw()} ff \\(policy drop\\)`));
    assert.match(r.json.msg, new RegExp(`nft insert rule inet ${fw()} ff iifname "${world.prefix}br" accept; nft insert rule inet ${fw()} ff oifname "${world.prefix}br" accept`));
    // What STATUS warns about is real: Pier's accept in its own table does not help.
    assert.match(talk(pod0, 'tcp', OUTSIDE, 9000, 1500), /^TIMEOUT$/);
  });

  it('a network that does not forward (isGateway false) is not affected by the drop', () => {
    const r = status({}, conf({ isGateway: false, ipMasq: false }));
    assert.equal(r.status, 0, r.stdout);
  });

  it('once that chain accepts the bridge both ways, STATUS is 0 and traffic flows', () => {
    world.exec('nft', ['insert', 'rule', 'inet', fw(), 'ff', 'iifname', `${world.prefix}br`, 'accept']);
    const half = status();
    assert.equal(half.json?.code, 50, 'one direction is not enough');
    assert.match(half.json.msg, /oifname/);
    assert.doesNotMatch(half.json.msg, /iifname/);
    world.exec('nft', ['insert', 'rule', 'inet', fw(), 'ff', 'oifname', `${world.prefix}br`, 'accept']);
    const r = status();
    assert.equal(r.status, 0, r.stdout);
    assert.equal(talk(pod0, 'tcp', OUTSIDE, 9000), HOST_OUT);
    world.exec('nft', ['delete', 'table', 'inet', fw()]);
  });

  it('nft without JSON support: STATUS 50 saying what to install', () => {
    const r = status({ PATH: fakeDir });
    assert.equal(r.json?.code, 50, r.stdout);
    assert.match(r.json.msg, /built without JSON support/);
    assert.match(r.json.msg, /install an nftables package built with JSON support/);
  });

  it('nft without JSON support: ADD fails saying what to install, and leaves nothing behind', () => {
    assertAddFailsCleanly((c, s) => world.call(c, s), { PATH: fakeDir }, /nftables unusable: nft 1\.0\.6 was built without JSON support/, /install an nftables package/);
  });

  it('no nft at all: STATUS 50 saying what to install', () => {
    const r = callWithoutSbin({ command: 'STATUS' }, conf());
    assert.equal(r.json?.code, 50, r.stdout + r.stderr);
    assert.match(r.json.msg, /nft not found/);
    assert.match(r.json.msg, /apt-get install nftables/);
  });

  it('no nft at all: a network without NAT is ready', () => {
    const r = callWithoutSbin({ command: 'STATUS' }, conf({ ipMasq: false, capabilities: {} }));
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it('no nft at all: ADD fails saying what to install, and leaves nothing behind', () => {
    assertAddFailsCleanly(callWithoutSbin, {}, /nftables unusable: nft not found/, /apt-get install nftables/);
  });

  it('the first pod is untouched by all of this and DELs cleanly', () => {
    assert.equal(talk(pod0, 'tcp', OUTSIDE, 9000), HOST_OUT);
    const r = world.call({ command: 'DEL', containerId: `${pod0}-ctr`, netns: world.netnsPath(pod0), ifname: 'eth0' }, conf());
    assert.equal(r.status, 0, r.stdout);
    assert.deepEqual(listAttachments(world.dataDir), []);
  });
});

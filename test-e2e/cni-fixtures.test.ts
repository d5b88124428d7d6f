// Replays the requests containerd 1.6 and podman 4.3 really sent (src/cni/testdata/runtime-
// requests) against dist/pier, adapted to a TestWorld: `type` becomes pier, host-local becomes
// pier-ipam with the world's data dir, bridge, subnet, nft table and pod netns are the world's;
// everything else (capitalised containerd keys, CNI_ARGS, podman's IP=/MAC= and aliases) is
// kept. Pier's answers must have the reference plugin's shape, and each sequence must end clean.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIME_REQUESTS_DIR } from '../src/cni/testdata/runtime-requests.ts';
import { REFERENCE_PLUGINS, TestWorld, ensureBuilt, type CniReply, Worlds, ok } from './cni-harness.ts';
import { tableElements } from './nft-state.ts';
import { ipJson } from './helpers.ts';

const FIXTURES = RUNTIME_REQUESTS_DIR;

interface Fixture {
  call: string;
  client: string;
  env: Record<string, string>;
  stdin: any;
  stdout: any;
}

function fixture(name: string): Fixture {
  return JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
}

const worlds = new Worlds();
before(() => {
  ensureBuilt();
  assert.ok(existsSync(FIXTURES), `fixtures at ${FIXTURES}`);
});
after(() => worlds.cleanupAll());

/** The JSON's shape: objects by sorted keys, arrays by length and element shapes, leaves by type. */
function shape(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(shape);
  if (x && typeof x === 'object') {
    return Object.fromEntries(Object.keys(x).sort().map((k) => [k, shape((x as Record<string, unknown>)[k])]));
  }
  return typeof x;
}

/** Replaces the reference subnet's prefix (e.g. `10.78.0.`) with the world's everywhere in s. */
const resubnet = (s: string, from: string) => s.replaceAll(from, '10.213.0.');

/**
 * A fixture's stdin for Pier in world w: type pier, pier-ipam with the world's data dir, the
 * world's bridge, network name and nft table; the reference subnet mapped onto the world's.
 */
function adapt(stdin: any, w: TestWorld, fromSubnet: string): any {
  const conf = JSON.parse(resubnet(JSON.stringify(stdin), fromSubnet));
  delete conf.prevResult;
  conf.type = 'pier';
  conf.name = `${w.prefix}net`;
  conf.bridge = `${w.prefix}br`;
  conf.nftTable = `pier_test_${w.prefix}`;
  conf.ipam = { ...conf.ipam, type: 'pier-ipam', dataDir: w.dataDir };
  return conf;
}

/** The env of a fixture call, with the pod netns (or "" where the runtime sent "") of the world. */
function callOf(f: Fixture, podPath: string, fromSubnet: string) {
  return {
    command: f.env.CNI_COMMAND as 'ADD' | 'DEL' | 'VERSION',
    containerId: f.env.CNI_CONTAINERID,
    ifname: f.env.CNI_IFNAME,
    netns: f.env.CNI_NETNS === '' ? '' : podPath,
    args: resubnet(f.env.CNI_ARGS, fromSubnet),
  };
}

function storeEmpty(w: TestWorld) {
  const dir = join(w.dataDir, `${w.prefix}net`);
  const names = readdirSync(dir).filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n));
  assert.deepEqual(names, [], 'no reservation left');
  assert.deepEqual(readdirSync(join(dir, 'attachments')), [], 'no attachment record left');
}

function hostVeths(w: TestWorld): string[] {
  return ipJson(w.host, 'link', 'show', 'type', 'veth').map((l: any) => l.ifname);
}

/** The hostPort map elements of the world's table: `proto port -> comment`. */
function hostPorts(w: TestWorld): string[] {
  const out = new Set<string>();
  for (const e of tableElements(w.host, `pier_test_${w.prefix}`)) {
    if (!e.set.startsWith('hostports')) continue;
    const key = (e.key as { concat: unknown[] }).concat.filter((v) => v === 'tcp' || v === 'udp' || typeof v === 'number').join(' ');
    out.add(`${key} ${e.comment}`);
  }
  return [...out].sort();
}

/** Asserts Pier's ADD result has the reference result's shape and agrees where it must. */
function assertLikeReference(res: any, ref: any, podPath: string, w: TestWorld) {
  assert.deepEqual(shape(res), shape(ref), `same keys and counts as the reference:\n${JSON.stringify(res)}\n${JSON.stringify(ref)}`);
  assert.equal(res.cniVersion, ref.cniVersion);
  assert.equal(res.interfaces[0].name, `${w.prefix}br`);
  assert.match(res.interfaces[1].name, /^veth[0-9a-f]{8}$/);
  assert.equal(res.interfaces[2].name, ref.interfaces[2].name);
  assert.equal(res.interfaces[2].sandbox, podPath);
  assert.deepEqual(res.routes, ref.routes);
  assert.equal(res.ips[0].version, ref.ips[0].version);
  assert.equal(res.ips[0].interface, ref.ips[0].interface);
  assert.equal(res.ips[0].gateway, '10.213.0.1');
}

describe('containerd 1.6 requests', () => {
  it('loopback in parallel, ADD with capitalised portMappings, DEL with netns and prevResult, DEL with neither', async () => {
    const w = worlds.make();
    const pod = w.addPod();
    const podPath = w.netnsPath(pod);
    const from = '10.78.0.';
    const add = fixture('containerd-bridge-ADD');
    const portmap = fixture('containerd-portmap-ADD');
    // Pier does portmap's job itself: its capabilities and runtimeConfig join Pier's entry.
    const conf = { ...adapt(add.stdin, w, from), capabilities: portmap.stdin.capabilities, runtimeConfig: portmap.stdin.runtimeConfig };
    assert.equal(conf.runtimeConfig.portMappings[0].HostPort, 18090, 'containerd capitalises the keys');

    // containerd runs the loopback network on lo at the same time as the pod network.
    const lo = fixture('containerd-loopback-ADD');
    const loCall = { ...callOf(lo, podPath, from), plugin: join(REFERENCE_PLUGINS, 'loopback') };
    const [loChild, pierChild] = [w.spawn(loCall, lo.stdin), w.spawn(callOf(add, podPath, from), conf)];
    const collect = (c: ReturnType<TestWorld['spawn']>) =>
      new Promise<CniReply>((done) => {
        let out = '';
        let err = '';
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (err += d));
        c.on('close', (status) => done({ status, stdout: out, stderr: err, json: out.trim() ? JSON.parse(out) : undefined }));
      });
    const [loRes, res] = await Promise.all([collect(loChild), collect(pierChild)]);
    assert.deepEqual(shape(ok(loRes, 'loopback ADD')), shape(lo.stdout));
    ok(res, 'ADD');
    assertLikeReference(res.json, add.stdout, podPath, w);
    const podIp = res.json.ips[0].address.split('/')[0];
    const eth0 = ipJson(pod, 'addr', 'show').find((l: any) => l.ifname === 'eth0');
    assert.ok(eth0.addr_info.some((a: any) => a.local === podIp));
    assert.ok(ipJson(pod, 'addr', 'show', 'dev', 'lo')[0].flags.includes('UP'), 'lo is up');
    const cid = add.env.CNI_CONTAINERID;
    assert.deepEqual(hostPorts(w), [`tcp 18090 ${cid}/eth0`], 'the capitalised HostPort is mapped');
    const port = ipJson(w.host, '-d', 'link', 'show', 'dev', res.json.interfaces[1].name)[0];
    assert.equal(port.linkinfo.info_slave_data.hairpin, true, 'hairpinMode from the fixture');

    // Pod stop: DEL with the netns and the cached result.
    const del = fixture('containerd-bridge-DEL');
    ok(w.call(callOf(del, podPath, from), { ...conf, prevResult: res.json }), 'DEL');
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(hostPorts(w), []);
    storeEmpty(w);
    // Pod removal: DEL again with CNI_NETNS="" and no prevResult.
    const del2 = fixture('containerd-bridge-DEL-2');
    assert.equal(del2.env.CNI_NETNS, '');
    assert.equal(del2.stdin.prevResult, undefined);
    ok(w.call(callOf(del2, podPath, from), conf), 'second DEL');
    ok(w.call({ ...callOf(fixture('containerd-loopback-DEL-2'), podPath, from), plugin: join(REFERENCE_PLUGINS, 'loopback') }, lo.stdin), 'loopback DEL');
    assert.deepEqual(hostVeths(w), []);
    storeEmpty(w);
  });

  it('the second DEL alone (no netns, no prevResult: the first never came) removes the veth and releases the address', () => {
    const w = worlds.make();
    const pod = w.addPod();
    const from = '10.78.0.';
    const add = fixture('containerd-bridge-ADD');
    const conf = adapt(add.stdin, w, from);
    const res = ok(w.call(callOf(add, w.netnsPath(pod), from), conf), 'ADD');
    assert.equal(hostVeths(w).length, 1);
    assert.ok(res.ips.length === 1);
    ok(w.call(callOf(fixture('containerd-bridge-DEL-2'), w.netnsPath(pod), from), conf), 'second DEL only');
    assert.deepEqual(hostVeths(w), []);
    storeEmpty(w);
  });
});

describe('podman 4.3 requests', () => {
  it('VERSION, ADD with IP=/MAC= in CNI_ARGS, aliases and portMappings, DEL with prevResult', () => {
    const w = worlds.make();
    const pod = w.addPod();
    const podPath = w.netnsPath(pod);
    const from = '10.77.0.';

    const version = fixture('podman-bridge-VERSION');
    const v = ok(w.call({ ...callOf(version, podPath, from), netns: version.env.CNI_NETNS }, version.stdin), 'VERSION');
    assert.deepEqual(Object.keys(v).sort(), Object.keys(version.stdout).sort());
    assert.equal(v.cniVersion, version.stdout.cniVersion);
    for (const sv of version.stdout.supportedVersions) assert.ok(v.supportedVersions.includes(sv), `supports ${sv}`);

    const add = fixture('podman-bridge-ADD');
    const portmap = fixture('podman-portmap-ADD');
    const conf = {
      ...adapt(add.stdin, w, from),
      capabilities: { ...add.stdin.capabilities, ...portmap.stdin.capabilities, aliases: true },
      // podman sends aliases as a map {network: [names]}.
      runtimeConfig: { ...portmap.stdin.runtimeConfig, aliases: { rcnet: ['rc-cap', 'web'] } },
    };
    const call = callOf(add, podPath, from);
    assert.match(call.args, /IP=10\.213\.0\.50/);
    const res = ok(w.call(call, conf), 'ADD');
    assertLikeReference(res, add.stdout, podPath, w);
    // The reference honoured IP= and MAC=: so must Pier.
    assert.equal(res.ips[0].address, '10.213.0.50/24');
    assert.equal(res.interfaces[2].mac, add.stdout.interfaces[2].mac);
    const eth0 = ipJson(pod, 'addr', 'show', 'dev', 'eth0')[0];
    assert.equal(eth0.address, '02:42:0a:4d:00:32');
    assert.ok(eth0.addr_info.some((a: any) => a.local === '10.213.0.50'));
    const cid = add.env.CNI_CONTAINERID;
    assert.deepEqual(hostPorts(w), [`tcp 18080 ${cid}/eth0`, `udp 18081 ${cid}/eth0`]);

    const del = fixture('podman-bridge-DEL');
    ok(w.call(callOf(del, podPath, from), { ...conf, prevResult: res }), 'DEL');
    assert.deepEqual(hostVeths(w), []);
    assert.deepEqual(hostPorts(w), []);
    assert.equal(ipJson(pod, 'link', 'show').some((l: any) => l.ifname === 'eth0'), false);
    storeEmpty(w);
  });
});

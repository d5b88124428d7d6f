// podman 4.3 with the CNI backend running the built Pier, as a user would set it up:
// network_backend = "cni", cni_plugin_dirs holding pier, pier-ipam and loopback, a Pier conflist,
// containers from a busybox root filesystem (`podman run --rootfs`; no registry is reachable).
// Checks addresses, pod-to-gateway and pod-to-pod traffic, published ports from the host
// (a local address and 127.0.0.1) and from an outside test host, masquerade, `--ip`,
// `--mac-address`, restart, parallel starts, refused requests (address or hostPort in use), and
// that `podman rm` or a container's own exit leaves no reservation, veth or nftables element.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ensureBuilt } from './cni-harness.ts';
import { ipJson } from './helpers.ts';
import { PodmanWorld, freePort, missingPodmanDeps } from './podman-world.ts';

let w: PodmanWorld;
let srvIp = '';
let hostPort = 0;

/** GET over HTTP from this process (the host netns); the body, or the error's text. */
async function httpGet(url: string): Promise<string> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    return await r.text();
  } catch (err) {
    return `error: ${(err as Error).cause ?? err}`;
  }
}

/** GET over HTTP from inside netns `ns` (node's fetch; the busybox wget of the host crashes there). */
function httpGetIn(ns: string, url: string): string {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(30000) }).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { process.stdout.write('error: ' + (e.cause ?? e)); })`;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  return r.stdout || `error: ${r.stderr}`;
}

/** A non-loopback IPv4 address of this host that is not on Pier's bridge or the test veth. */
function hostLocalAddress(): string {
  const links = ipJson<Array<{ ifname: string; addr_info?: Array<{ local: string; scope: string }> }>>(undefined, '-4', 'addr', 'show');
  for (const l of links) {
    if (l.ifname === 'lo' || l.ifname === w.bridge || l.ifname === w.outsideVethHost) continue;
    const a = l.addr_info?.find((x) => x.scope === 'global');
    if (a) return a.local;
  }
  // No uplink address at all (an isolated machine): the test veth's host side is local too.
  return w.outsideHostAddr;
}

before(async () => {
  const missing = missingPodmanDeps();
  if (missing) throw new Error(missing);
  ensureBuilt();
  w = new PodmanWorld();
  w.addOutside();
  hostPort = await freePort();
  w.startHttpd(`${w.prefix}-srv`, ['-p', `${hostPort}:8080`]);
  srvIp = w.netOf(`${w.prefix}-srv`).IPAddress;
});

after(() => {
  w?.cleanup();
});

test('podman sees Pier as the network driver of the test network', () => {
  // podman 4.3 reads subnets only from the conflists of its own bridge and macvlan types.
  const net = JSON.parse(w.podmanOk('network', 'inspect', w.network))[0];
  assert.equal(net.name, w.network);
  assert.equal(net.driver, 'pier');
});

test('a container gets its address from Pier: podman inspect, ip addr inside, the reservation', () => {
  const id = w.inspect(`${w.prefix}-srv`).Id as string;
  const net = w.netOf(`${w.prefix}-srv`);
  assert.ok(srvIp.startsWith(w.base), `address ${srvIp} is not in ${w.subnet}`);
  assert.equal(net.IPPrefixLen, 24);
  assert.equal(net.Gateway, w.gateway);

  const inside = w.podmanOk('exec', `${w.prefix}-srv`, '/bin/ip', '-o', '-4', 'addr', 'show', 'eth0');
  assert.match(inside, new RegExp(`inet ${srvIp.replaceAll('.', '\\.')}/24 `));
  const route = w.podmanOk('exec', `${w.prefix}-srv`, '/bin/ip', 'route');
  assert.match(route, new RegExp(`default via ${w.gateway.replaceAll('.', '\\.')} dev eth0`));

  // Pier's own store holds the reservation (host-local's format) and the attachment record.
  assert.equal(w.storeFiles().ips.get(srvIp), `${id}\r\neth0`);
  const rec = w.record(id);
  assert.ok(rec, 'no attachment record');
  assert.deepEqual(rec.ips.map((i: { address: string }) => i.address), [`${srvIp}/24`]);
  assert.ok(w.bridgePorts().includes(rec.hostVeth), `host veth ${rec.hostVeth} is not on ${w.bridge}`);
  // The gateway address sits on the bridge.
  const br = ipJson(undefined, '-4', 'addr', 'show', 'dev', w.bridge)[0];
  assert.ok(br.addr_info.some((a: { local: string }) => a.local === w.gateway));
});

test('a container reaches the gateway and another container (ping and HTTP)', () => {
  const r = w.podman(
    ...// busybox-static's wget crashes (SIGSEGV) on Debian 12: nc speaks the HTTP.
    w.runArgs(['--rm'], ['/bin/sh', '-c', `ping -c 1 -W 2 ${w.gateway} && ping -c 1 -W 2 ${srvIp} && printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${srvIp} 8080`]),
  );
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.ok(r.stdout.endsWith(w.greeting), r.stdout);
});

test('-p HOSTPORT:PORT answers from the host on a local address and on 127.0.0.1', async () => {
  assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/index.html`), w.greeting);
  assert.equal(await httpGet(`http://${hostLocalAddress()}:${hostPort}/index.html`), w.greeting);
});

test('-p HOSTPORT:PORT answers an outside host (a test netns joined by a veth pair)', () => {
  assert.equal(httpGetIn(w.outside, `http://${w.outsideHostAddr}:${hostPort}/index.html`), w.greeting);
});

test('container traffic to an outside host is masqueraded behind the host address', () => {
  // The outside netns has no route to the pod subnet: replies come back only when masqueraded.
  const r = w.podman('exec', `${w.prefix}-srv`, '/bin/ping', '-c', '1', '-W', '2', w.outsideAddr);
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
});

test('podman run --ip ADDR gets the requested address', () => {
  const want = `${w.base}77`;
  const r = w.podman(...w.runArgs(['--rm', '--ip', want], ['/bin/ip', '-o', '-4', 'addr', 'show', 'eth0']));
  assert.equal(r.status, 0, `${r.stderr}\n--- pier log ---\n${w.logTail()}`);
  assert.match(r.stdout, new RegExp(`inet ${want.replaceAll('.', '\\.')}/24 `));
  // --rm: the address is free again.
  assert.equal(w.storeFiles().ips.has(want), false, 'the --rm container kept its reservation');
});

test('podman rm leaves no reservation, veth, nftables element or CNI cache entry behind', async () => {
  const name = `${w.prefix}-gone`;
  const want = `${w.base}78`;
  const port = await freePort();
  const id = w.startHttpd(name, ['--ip', want, '-p', `${port}:8080`]);
  assert.equal(w.netOf(name).IPAddress, want);
  const rec = w.record(id);
  assert.ok(rec?.hostVeth, 'no attachment record with a host veth');
  assert.ok(w.bridgePorts().includes(rec.hostVeth));
  assert.ok(w.nftText().includes(id), 'Pier\'s table has no element for the container');
  assert.equal(await httpGet(`http://127.0.0.1:${port}/index.html`), w.greeting);
  const portsBefore = w.bridgePorts().length;
  assert.ok(w.cniCacheFiles().includes(`${w.network}-${id}-eth0`), 'podman cached no CNI result');

  w.podmanOk('rm', '-f', '-t', '0', name);

  const store = w.storeFiles();
  assert.equal(store.ips.has(want), false, `reservation of ${want} left in ${w.storeDir}`);
  assert.ok(![...store.ips.values()].some((v) => v.startsWith(id)), 'an address is still reserved for the container');
  assert.ok(!store.records.some((f) => f.startsWith(id)), 'the attachment record is left');
  assert.equal(w.bridgePorts().includes(rec.hostVeth), false, `${rec.hostVeth} is still on ${w.bridge}`);
  assert.equal(spawnSync('ip', ['link', 'show', rec.hostVeth]).status, 1, `${rec.hostVeth} still exists`);
  assert.equal(w.bridgePorts().length, portsBefore - 1);
  assert.equal(w.nftText().includes(id), false, 'Pier\'s table still mentions the container');
  assert.match(await httpGet(`http://127.0.0.1:${port}/index.html`), /^error: /);
  assert.equal(w.cniCacheFiles().includes(`${w.network}-${id}-eth0`), false, 'podman kept the CNI result: DEL failed?');
  // The other container is untouched.
  assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/index.html`), w.greeting);
  assert.equal(w.storeFiles().ips.has(srvIp), true);
});

test('podman run --ip of an address in use fails and leaves nothing behind', () => {
  const before = { ports: w.bridgePorts().sort(), store: w.storeFiles(), nft: w.nftElements() };
  const r = w.podman(...w.runArgs(['--rm', '--ip', srvIp], ['/bin/true']));
  assert.notEqual(r.status, 0, 'a second container got an address already in use');
  assert.match(r.stderr, new RegExp(srvIp.replaceAll('.', '\\.')), r.stderr);
  assert.deepEqual(w.bridgePorts().sort(), before.ports);
  const after = w.storeFiles();
  assert.deepEqual([...after.ips.keys()].sort(), [...before.store.ips.keys()].sort());
  assert.deepEqual(after.records.sort(), before.store.records.sort());
  assert.deepEqual(w.nftElements(), before.nft, 'the same nft elements as before');
});

test('podman restart keeps the container reachable through its published port', async () => {
  w.podmanOk('restart', '-t', '0', `${w.prefix}-srv`);
  const ip = w.netOf(`${w.prefix}-srv`).IPAddress;
  assert.ok(ip.startsWith(w.base));
  assert.equal(await httpGet(`http://127.0.0.1:${hostPort}/index.html`), w.greeting);
  assert.equal(httpGetIn(w.outside, `http://${w.outsideHostAddr}:${hostPort}/index.html`), w.greeting);
  srvIp = ip;
  // One container, one reservation, one veth.
  assert.equal(w.storeFiles().ips.size, 1);
  assert.equal(w.bridgePorts().length, 1);
});

test('a container that exits by itself gives its address back (podman\'s cleanup runs DEL)', async () => {
  const name = `${w.prefix}-quick`;
  const id = w.podmanOk(...w.runArgs(['-d', '--name', name], ['/bin/sleep', '1'])).trim();
  const ip = w.netOf(name).IPAddress;
  assert.equal(w.storeFiles().ips.get(ip), `${id}\r\neth0`);
  // conmon runs `podman container cleanup` on exit, with this world's --root/--runroot and env.
  const deadline = Date.now() + 120_000;
  while (w.storeFiles().ips.has(ip) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.equal(w.storeFiles().ips.has(ip), false, `${ip} still reserved after the container exited`);
  assert.equal(w.record(id), undefined);
  assert.equal(w.nftText().includes(id), false);
  assert.equal(w.bridgePorts().length, 1, `veths on ${w.bridge}: ${w.bridgePorts().join(' ')}`);
  w.podmanOk('rm', name);
});

test('a hostPort already published by another container is refused and the failed ADD leaves nothing', () => {
  const before = { ports: w.bridgePorts().sort(), store: w.storeFiles(), nft: w.nftElements() };
  const name = `${w.prefix}-clash`;
  const r = w.podman(...w.runArgs(['-d', '--name', name, '-p', `${hostPort}:8080`], ['/bin/httpd', '-f', '-p', '8080', '-h', '/www']));
  assert.notEqual(r.status, 0, 'a second container took a published hostPort');
  assert.match(r.stderr, new RegExp(`hostPort ${hostPort}/tcp is already mapped`), r.stderr);
  assert.deepEqual(w.bridgePorts().sort(), before.ports);
  const after = w.storeFiles();
  assert.deepEqual([...after.ips.keys()].sort(), [...before.store.ips.keys()].sort());
  assert.deepEqual(after.records.sort(), before.store.records.sort());
  assert.deepEqual(w.nftElements(), before.nft, 'the same nft elements as before');
  w.podman('rm', '-f', name);
});

test('podman run --mac-address sets the container MAC (CNI_ARGS MAC=)', () => {
  const mac = '02:42:0a:00:00:42';
  const r = w.podman(...w.runArgs(['--rm', '--mac-address', mac], ['/bin/ip', 'link', 'show', 'eth0']));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`link/ether ${mac} `));
});

test('containers started at the same time get distinct addresses', async () => {
  const names = [0, 1, 2, 3].map((i) => `${w.prefix}-par${i}`);
  const results = await Promise.all(names.map((n) => w.podmanAsync(...w.runArgs(['-d', '--name', n], ['/bin/sleep', '600']))));
  for (const r of results) assert.equal(r.status, 0, r.stderr);
  const ips = names.map((n) => w.netOf(n).IPAddress);
  assert.equal(new Set([...ips, srvIp]).size, names.length + 1, `addresses: ${ips.join(' ')}`);
  assert.equal(w.bridgePorts().length, names.length + 1);
  w.podmanOk('rm', '-f', '-t', '0', ...names);
  assert.deepEqual([...w.storeFiles().ips.keys()], [srvIp]);
  assert.equal(w.bridgePorts().length, 1);
});

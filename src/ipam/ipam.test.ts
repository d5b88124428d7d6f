import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parseIpamConfig } from './config.ts';
import { openDiskStore } from './disk-store.ts';
import {
  type IpamDeps, defaultIpamDeps, getAttachment, ipamAdd, ipamCheck, ipamDel, ipamGc, ipamStatus,
  listAttachments, lookupAttachment, updateAttachment,
} from './ipam.ts';
import { MemoryStore } from './memory-store.ts';
import { CniError } from '../cni/errors.ts';

const root = fs.mkdtempSync(`${os.tmpdir()}/pier-ipam-`);
after(() => fs.rmSync(root, { recursive: true, force: true }));
fs.writeFileSync(`${root}/resolv.conf`, 'nameserver 10.96.0.10\nsearch svc.cluster.local\noptions ndots:5\n');

function diskDeps(warnings: string[] = []): IpamDeps {
  return { openStore: (d, n) => openDiskStore(d, n), bootId: 'b1', netnsExists: () => true, warn: (w) => warnings.push(w) };
}
const code = (n: number, re?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CniError, String(e));
  assert.equal(e.code, n, e.message);
  if (re) assert.match(e.message, re);
  return true;
};
const key = { containerID: 'c1', ifname: 'eth0' };

test('ipamAdd returns a CNI 1.1 IPAM result: ips with gateways, routes, dns', () => {
  const cfg = parseIpamConfig(
    {
      dataDir: `${root}/add`,
      resolvConf: `${root}/resolv.conf`,
      ranges: [[{ subnet: '10.40.0.0/24' }], [{ subnet: 'fd00:40::/64' }]],
      routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:40::1', mtu: 1400 }],
    },
    'n1',
  );
  const result = ipamAdd(diskDeps(), cfg, { ...key, netnsPath: '/run/netns/x', bridge: 'pier0', ipMasq: true });
  assert.deepEqual(result, {
    ips: [
      { address: '10.40.0.2/24', gateway: '10.40.0.1' },
      { address: 'fd00:40::2/64', gateway: 'fd00:40::1' },
    ],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:40::1', mtu: 1400 }],
    dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'], options: ['ndots:5'] },
  });
  const rec = getAttachment(diskDeps(), cfg, key)!;
  assert.equal(rec.bridge, 'pier0');
  assert.equal(rec.ipMasq, true);
  assert.equal(rec.bootId, 'b1');
  assert.ok(!Number.isNaN(Date.parse(rec.createdAt)));
});

test('an unreadable resolvConf fails ADD before anything is reserved', () => {
  const cfg = parseIpamConfig({ dataDir: `${root}/resolv-missing`, resolvConf: `${root}/nope`, subnet: '10.41.0.0/24' }, 'n');
  assert.throws(() => ipamAdd(diskDeps(), cfg, key), code(7, /resolvConf/));
  assert.equal(fs.existsSync(`${root}/resolv-missing`), false);
});

test('updateAttachment merges what the command learned; key and ips stay', () => {
  const cfg = parseIpamConfig({ dataDir: `${root}/update`, subnet: '10.42.0.0/24' }, 'n');
  const deps = diskDeps();
  ipamAdd(deps, cfg, { ...key, extra: { a: 1 } });
  const next = updateAttachment(deps, cfg, key, {
    hostVeth: 'veth0123abcd',
    netns: { dev: 4, ino: 4026532123 },
    portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
    extra: { b: 2 },
  });
  assert.equal(next.hostVeth, 'veth0123abcd');
  assert.deepEqual(next.extra, { a: 1, b: 2 });
  assert.deepEqual(getAttachment(deps, cfg, key), next);
  assert.deepEqual(next.ips, [{ address: '10.42.0.2/24', gateway: '10.42.0.1', rangeSet: 0 }]);
  assert.throws(() => updateAttachment(deps, cfg, { containerID: 'nobody', ifname: 'eth0' }, { hostVeth: 'x' }), code(3));
  assert.throws(() => updateAttachment(deps, cfg, { containerID: '../x', ifname: 'eth0' }, {}), code(4));
});

test('ipamDel returns the released record and is idempotent; ipamCheck follows the reservation', () => {
  const cfg = parseIpamConfig({ dataDir: `${root}/del`, subnet: '10.43.0.0/24' }, 'n');
  const deps = diskDeps();
  ipamAdd(deps, cfg, { ...key, portMappings: [{ hostPort: 80 }] });
  assert.equal(ipamCheck(deps, cfg, key, ['10.43.0.2/24']).containerID, 'c1');
  assert.throws(() => ipamCheck(deps, cfg, key, ['10.43.0.3/24']), code(103));
  assert.deepEqual(ipamDel(deps, cfg, key)?.portMappings, [{ hostPort: 80 }]);
  assert.equal(ipamDel(deps, cfg, key), undefined);
  assert.throws(() => ipamCheck(deps, cfg, key, ['10.43.0.2/24']), code(103, /no IP reservation/));
});

test('lookupAttachment proves an attachment absent only from a clean store with no record file of it', () => {
  const cfg = parseIpamConfig({ dataDir: `${root}/lookup`, subnet: '10.46.0.0/24' }, 'n');
  const look = (k = key) => {
    const r = lookupAttachment(diskDeps(), cfg, k);
    return { record: r.record?.containerID, absent: r.absent };
  };
  // No store at all (a wiped or moved data dir, a renamed network): nothing is proven.
  assert.deepEqual(look(), { record: undefined, absent: false });
  assert.equal(fs.existsSync(`${root}/lookup`), false, 'a lookup creates nothing');
  ipamAdd(diskDeps(), cfg, key);
  assert.deepEqual(look(), { record: 'c1', absent: false });
  assert.deepEqual(look({ containerID: 'other', ifname: 'eth0' }), { record: undefined, absent: true });
  ipamDel(diskDeps(), cfg, key);
  assert.deepEqual(look(), { record: undefined, absent: true });
  // A torn record file: unreadable, but it may name addresses.
  const rec = `${root}/lookup/n/attachments/c1_eth0.json`;
  fs.writeFileSync(rec, '{"containerID": "c1", "ifn');
  assert.deepEqual(look(), { record: undefined, absent: false });
  fs.rmSync(rec);
  assert.deepEqual(look(), { record: undefined, absent: true });
  // A store a killed process left mid-change: repair has not said what is left.
  const lock = `${root}/lookup/n/lock`;
  fs.writeFileSync(lock, fs.readFileSync(lock, 'latin1').replace(' clean', ' dirty'), 'latin1');
  assert.deepEqual(look(), { record: undefined, absent: false });
});

test('ipamGc releases the unlisted attachments and reports them', () => {
  const cfg = parseIpamConfig({ dataDir: `${root}/gc`, subnet: '10.44.0.0/24' }, 'n');
  const warnings: string[] = [];
  const deps = diskDeps(warnings);
  for (const id of ['a', 'b', 'c']) ipamAdd(deps, cfg, { containerID: id, ifname: 'eth0' });
  const released = ipamGc(deps, cfg, [{ containerID: 'b', ifname: 'eth0' }]);
  assert.deepEqual(released.map((r) => r.containerID), ['a', 'c']);
  assert.deepEqual(warnings, ['GC released a/eth0 (10.44.0.2/24)', 'GC released c/eth0 (10.44.0.4/24)']);
  assert.deepEqual(listAttachments(`${root}/gc`).map((r) => r.containerID), ['b']);
});

test('ipamStatus: fine, then code 50 when a range set is full', () => {
  const cfg = parseIpamConfig({ dataDir: `${root}/status`, subnet: '10.45.0.0/30' }, 'n'); // one address
  const deps = diskDeps();
  ipamStatus(deps, cfg);
  ipamAdd(deps, cfg, key);
  assert.throws(() => ipamStatus(deps, cfg), code(50, /no free address in range set 0 \(10\.45\.0\.2-10\.45\.0\.2\)/));
  assert.throws(() => ipamAdd(deps, cfg, { containerID: 'c2', ifname: 'eth0' }), code(100));
});

test('repairs and automatic releases reach the warn callback', () => {
  const store = new MemoryStore('n');
  const cfg = parseIpamConfig({ subnet: '10.46.0.0/24' }, 'n');
  const warnings: string[] = [];
  const deps: IpamDeps = { openStore: () => store, bootId: 'new', netnsExists: () => false, warn: (w) => warnings.push(w) };
  ipamAdd({ ...deps, bootId: 'old' }, cfg, { containerID: 'old', ifname: 'eth0', netnsPath: '/run/netns/old' });
  ipamAdd(deps, cfg, key);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /released old\/eth0 .* earlier boot/);
});

test('listAttachments covers every network under a dataDir and creates nothing', () => {
  const dataDir = `${root}/ls`;
  assert.deepEqual(listAttachments(dataDir), []);
  assert.equal(fs.existsSync(dataDir), false);
  const deps = diskDeps();
  const t = (s: number) => () => new Date(Date.UTC(2025, 0, 1, 0, 0, s));
  ipamAdd({ ...deps, now: t(2) }, parseIpamConfig({ dataDir, subnet: '10.47.0.0/24' }, 'beta'), { containerID: 'y', ifname: 'eth0' });
  ipamAdd({ ...deps, now: t(1) }, parseIpamConfig({ dataDir, subnet: '10.47.0.0/24' }, 'beta'), { containerID: 'x', ifname: 'eth0' });
  ipamAdd(deps, parseIpamConfig({ dataDir, subnet: '10.48.0.0/24' }, 'alpha'), { containerID: 'z', ifname: 'net1' });
  fs.writeFileSync(`${dataDir}/stray-file`, '');
  assert.deepEqual(
    listAttachments(dataDir).map((r) => `${r.network}:${r.containerID}/${r.ifname}`),
    ['alpha:z/net1', 'beta:x/eth0', 'beta:y/eth0'],
  );
});

test('defaultIpamDeps reads this boot\'s id', () => {
  const deps = defaultIpamDeps();
  assert.match(deps.bootId, /^[0-9a-f-]{36}$/);
  assert.equal(deps.netnsExists('/proc/self/ns/net'), true);
  assert.equal(deps.netnsExists(`${root}/no-such-netns`), false);
});

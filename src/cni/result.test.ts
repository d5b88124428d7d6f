import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeRequest } from './testdata/runtime-requests.ts';
import { CniError } from './errors.ts';
import { type CniResult, convertResult, parsePrevResult } from './result.ts';
import { SUPPORTED_VERSIONS } from './versions.ts';

const fixture = runtimeRequest;

/** The fixtures were stored with sorted keys and one-space indent: render ours the same way. */
function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]))
        : v;
  return JSON.stringify(sort(value), null, 1);
}

/** A dual-stack bridge attachment using every field the 1.1.0 shape has. */
const RICH: CniResult = {
  interfaces: [
    { name: 'pier0', mac: '0a:58:0a:01:00:01', mtu: 1450 },
    { name: 'veth1234abcd', mac: '6e:b1:3a:a8:d0:f2', mtu: 1450 },
    { name: 'eth0', mac: '02:42:0a:01:00:05', mtu: 1450, sandbox: '/var/run/netns/pod1' },
  ],
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 2 },
    { address: 'fd00:1::5/64', gateway: 'fd00:1::1', interface: 2 },
    { address: '10.2.0.9/24', interface: 2 },
  ],
  routes: [
    { dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400, advmss: 1360, priority: 100, table: 0, scope: 0 },
    { dst: '::/0', gw: 'fd00:1::1' },
    { dst: '10.96.0.0/12' },
  ],
  dns: { nameservers: ['10.96.0.10'], domain: 'cluster.local', search: ['default.svc.cluster.local'], options: ['ndots:5'] },
};

const DNS = '"dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["default.svc.cluster.local"],"options":["ndots:5"]}';

const GOLDEN: Record<string, string> = {
  '1.1.0':
    '{"cniVersion":"1.1.0","interfaces":[' +
    '{"name":"pier0","mac":"0a:58:0a:01:00:01","mtu":1450},' +
    '{"name":"veth1234abcd","mac":"6e:b1:3a:a8:d0:f2","mtu":1450},' +
    '{"name":"eth0","mac":"02:42:0a:01:00:05","mtu":1450,"sandbox":"/var/run/netns/pod1"}],' +
    '"ips":[{"interface":2,"address":"10.1.0.5/24","gateway":"10.1.0.1"},' +
    '{"interface":2,"address":"fd00:1::5/64","gateway":"fd00:1::1"},' +
    '{"interface":2,"address":"10.2.0.9/24"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1","mtu":1400,"advmss":1360,"priority":100,"table":0,"scope":0},' +
    '{"dst":"::/0","gw":"fd00:1::1"},{"dst":"10.96.0.0/12"}],' +
    DNS +
    '}',
  '1.0.0':
    '{"cniVersion":"1.0.0","interfaces":[' +
    '{"name":"pier0","mac":"0a:58:0a:01:00:01"},' +
    '{"name":"veth1234abcd","mac":"6e:b1:3a:a8:d0:f2"},' +
    '{"name":"eth0","mac":"02:42:0a:01:00:05","sandbox":"/var/run/netns/pod1"}],' +
    '"ips":[{"interface":2,"address":"10.1.0.5/24","gateway":"10.1.0.1"},' +
    '{"interface":2,"address":"fd00:1::5/64","gateway":"fd00:1::1"},' +
    '{"interface":2,"address":"10.2.0.9/24"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"},{"dst":"::/0","gw":"fd00:1::1"},{"dst":"10.96.0.0/12"}],' +
    DNS +
    '}',
  '0.2.0':
    '{"cniVersion":"0.2.0",' +
    '"ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"},{"dst":"10.96.0.0/12"}]},' +
    '"ip6":{"ip":"fd00:1::5/64","gateway":"fd00:1::1","routes":[{"dst":"::/0","gw":"fd00:1::1"}]},' +
    DNS +
    '}',
};
for (const v of ['0.3.0', '0.3.1', '0.4.0']) {
  GOLDEN[v] =
    `{"cniVersion":"${v}","interfaces":[` +
    '{"name":"pier0","mac":"0a:58:0a:01:00:01"},' +
    '{"name":"veth1234abcd","mac":"6e:b1:3a:a8:d0:f2"},' +
    '{"name":"eth0","mac":"02:42:0a:01:00:05","sandbox":"/var/run/netns/pod1"}],' +
    '"ips":[{"version":"4","interface":2,"address":"10.1.0.5/24","gateway":"10.1.0.1"},' +
    '{"version":"6","interface":2,"address":"fd00:1::5/64","gateway":"fd00:1::1"},' +
    '{"version":"4","interface":2,"address":"10.2.0.9/24"}],' +
    '"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"},{"dst":"::/0","gw":"fd00:1::1"},{"dst":"10.96.0.0/12"}],' +
    DNS +
    '}';
}
GOLDEN['0.1.0'] = GOLDEN['0.2.0'].replace('"0.2.0"', '"0.1.0"');

/** The internal form of what the bridge plugin printed in containerd-bridge-ADD. */
const BRIDGE_ADD: CniResult = {
  interfaces: [
    { name: 'rcbr1', mac: '46:40:83:ba:94:fc' },
    { name: 'veth77b4aa99', mac: 'ca:eb:8c:58:6f:96' },
    { name: 'eth0', mac: '86:54:aa:db:d2:33', sandbox: '/var/run/netns/cni-01d8503d-acbb-e903-46d5-f0fb10cbc8fc' },
  ],
  ips: [{ address: '10.78.0.4/24', gateway: '10.78.0.1', interface: 2 }],
  routes: [{ dst: '0.0.0.0/0' }],
};

describe('convertResult', () => {
  for (const version of SUPPORTED_VERSIONS) {
    it(`prints ${version} exactly as the Go library does, key order included`, () => {
      assert.equal(JSON.stringify(convertResult(RICH, version)), GOLDEN[version]);
    });
  }

  it('prints "dns": {} for an empty DNS in every version, as Go does for its struct field', () => {
    const minimal: CniResult = { ips: [{ address: '10.0.0.2/24' }] };
    assert.equal(JSON.stringify(convertResult(minimal, '1.1.0')), '{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"}],"dns":{}}');
    assert.equal(JSON.stringify(convertResult(minimal, '0.4.0')), '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24"}],"dns":{}}');
    assert.equal(JSON.stringify(convertResult(minimal, '0.2.0')), '{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"},"dns":{}}');
    assert.equal(JSON.stringify(convertResult({ dns: { nameservers: [], search: [] } }, '1.0.0')), '{"cniVersion":"1.0.0","dns":{}}');
  });

  it('keeps interface socketPath and pciID for 1.1.0 only', () => {
    const r: CniResult = { interfaces: [{ name: 'vhost0', mtu: 9000, socketPath: '/run/vhost.sock', pciID: '0000:03:00.1' }] };
    assert.equal(
      JSON.stringify(convertResult(r, '1.1.0')),
      '{"cniVersion":"1.1.0","interfaces":[{"name":"vhost0","mtu":9000,"socketPath":"/run/vhost.sock","pciID":"0000:03:00.1"}],"dns":{}}',
    );
    assert.equal(JSON.stringify(convertResult(r, '1.0.0')), '{"cniVersion":"1.0.0","interfaces":[{"name":"vhost0"}],"dns":{}}');
  });

  it('refuses to print a 0.1.0/0.2.0 result without an IP, as Go does', () => {
    for (const v of ['0.1.0', '0.2.0']) {
      assert.throws(() => convertResult({ interfaces: [{ name: 'eth0' }] }, v), (err: CniError) => err.code === 999 && /no valid IP/.test(err.message));
    }
  });

  it('refuses an unsupported target version with code 1', () => {
    assert.throws(() => convertResult(RICH, '0.5.0'), (err: CniError) => err.code === 1);
  });

  it('matches containerd-bridge-ADD\'s stdout (0.4.0 bridge result)', () => {
    const { stdout } = fixture('containerd-bridge-ADD');
    const ours = convertResult(BRIDGE_ADD, '0.4.0');
    assert.equal(sortedJson(ours), sortedJson(stdout));
    assert.equal(
      JSON.stringify(ours),
      '{"cniVersion":"0.4.0","interfaces":[{"name":"rcbr1","mac":"46:40:83:ba:94:fc"},' +
        '{"name":"veth77b4aa99","mac":"ca:eb:8c:58:6f:96"},' +
        '{"name":"eth0","mac":"86:54:aa:db:d2:33","sandbox":"/var/run/netns/cni-01d8503d-acbb-e903-46d5-f0fb10cbc8fc"}],' +
        '"ips":[{"version":"4","interface":2,"address":"10.78.0.4/24","gateway":"10.78.0.1"}],' +
        '"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}',
    );
  });

  it('matches containerd-host-local-ADD\'s and podman-host-local-ADD\'s stdout (IPAM results)', () => {
    const containerd: CniResult = { ips: [{ address: '10.78.0.4/24', gateway: '10.78.0.1' }], routes: [{ dst: '0.0.0.0/0' }] };
    const ours = convertResult(containerd, '0.4.0');
    assert.equal(sortedJson(ours), sortedJson(fixture('containerd-host-local-ADD').stdout));
    assert.equal(
      JSON.stringify(ours),
      '{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.78.0.4/24","gateway":"10.78.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}',
    );
    const podman: CniResult = { ips: [{ address: '10.77.0.50/24', gateway: '10.77.0.1' }], routes: [{ dst: '0.0.0.0/0' }] };
    assert.equal(sortedJson(convertResult(podman, '0.4.0')), sortedJson(fixture('podman-host-local-ADD').stdout));
  });

  it('adds the "version" the reference loopback leaves out of its 0.3.1 result, and differs in nothing else', () => {
    // The reference loopback builds a 1.0.0 result labelled 0.3.1; Go's converter then skips the
    // "conversion" because the labels match, so the IPs lack the 0.3.x "version" field.
    const { stdout } = fixture('containerd-loopback-ADD');
    const ours = convertResult(parsePrevResult(stdout, '0.3.1'), '0.3.1') as unknown as { ips: Array<Record<string, unknown>> };
    assert.deepEqual(ours.ips.map((ip) => ip.version), ['4', '6']);
    for (const ip of ours.ips) delete ip.version;
    assert.equal(sortedJson(ours), sortedJson(stdout));
  });

  it('reproduces every chained 0.4.0 stdout from the prevResult it was given', () => {
    // The bridge ADDs have no prevResult: the next plugin's prevResult is the bridge's output.
    const sources: Record<string, string> = { 'podman-bridge-ADD': 'podman-firewall-ADD', 'containerd-bridge-ADD': 'containerd-firewall-ADD' };
    for (const name of ['containerd-bridge-ADD', 'containerd-firewall-ADD', 'containerd-portmap-ADD', 'containerd-tuning-ADD',
      'podman-bridge-ADD', 'podman-firewall-ADD', 'podman-portmap-ADD', 'podman-tuning-ADD']) {
      const f = fixture(name);
      const prev = fixture(sources[name] ?? name).stdin.prevResult;
      assert.equal(sortedJson(convertResult(parsePrevResult(prev, '0.4.0'), '0.4.0')), sortedJson(f.stdout), name);
    }
  });
});

describe('parsePrevResult', () => {
  it('reads every version\'s output back into the same internal result (minus what the version cannot hold)', () => {
    for (const v of ['1.1.0']) assert.deepEqual(parsePrevResult(convertResult(RICH, v), v), RICH);
    const withoutV11 = structuredClone(RICH);
    for (const i of withoutV11.interfaces!) delete i.mtu;
    withoutV11.routes![0] = { dst: '0.0.0.0/0', gw: '10.1.0.1' };
    for (const v of ['1.0.0', '0.4.0', '0.3.1', '0.3.0']) assert.deepEqual(parsePrevResult(convertResult(RICH, v), v), withoutV11, v);
    for (const v of ['0.2.0', '0.1.0']) {
      assert.deepEqual(parsePrevResult(convertResult(RICH, v), v), {
        ips: [{ address: '10.1.0.5/24', gateway: '10.1.0.1' }, { address: 'fd00:1::5/64', gateway: 'fd00:1::1' }],
        routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }, { dst: '10.96.0.0/12' }, { dst: '::/0', gw: 'fd00:1::1' }],
        dns: RICH.dns,
      }, v);
    }
  });

  it('reads the fixtures\' prevResult', () => {
    const prev = fixture('containerd-bridge-DEL').stdin.prevResult;
    assert.deepEqual(parsePrevResult(prev, '0.4.0'), BRIDGE_ADD);
  });

  it('reads the 1.0.0-shaped result the reference loopback labels 0.3.1 (no "version" on IPs)', () => {
    const { stdout } = fixture('containerd-loopback-ADD');
    assert.deepEqual(parsePrevResult(stdout, '0.3.1'), {
      interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: '/var/run/netns/cni-01d8503d-acbb-e903-46d5-f0fb10cbc8fc' }],
      ips: [{ address: '127.0.0.1/8', interface: 0 }, { address: '::1/128', interface: 0 }],
    });
  });

  it('takes the shape from the prevResult\'s own cniVersion when it has one', () => {
    const legacy = { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' } };
    assert.deepEqual(parsePrevResult(legacy, '1.0.0'), { ips: [{ address: '10.0.0.2/24' }] });
  });

  it('treats null and "" like Go zero values', () => {
    assert.deepEqual(
      parsePrevResult({ interfaces: null, ips: [{ address: '10.0.0.2/24', gateway: '' }], routes: null, dns: { domain: '' } }, '1.0.0'),
      { ips: [{ address: '10.0.0.2/24' }] },
    );
  });

  it('refuses malformed results with code 7 naming the path and the value', () => {
    const cases: Array<[unknown, string, RegExp]> = [
      [{ ips: [{ address: '10.0.0.2' }] }, '1.0.0', /prevResult\.ips\[0\]\.address: must be ip\/prefix \(got "10\.0\.0\.2"\)/],
      [{ ips: [{ address: '10.0.0.2/24', gateway: 'gw' }] }, '0.4.0', /prevResult\.ips\[0\]\.gateway: .*\(got "gw"\)/],
      [{ ips: [{ address: '10.0.0.2/24', version: 4 }] }, '0.4.0', /prevResult\.ips\[0\]\.version: .*\(got 4\)/],
      [{ interfaces: [{ mac: 'x' }] }, '1.0.0', /prevResult\.interfaces\[0\]\.name/],
      [{ routes: [{ dst: '0.0.0.0/0', table: 1.5 }] }, '1.1.0', /prevResult\.routes\[0\]\.table: .*\(got 1\.5\)/],
      [{ ip4: { ip: 'nope' } }, '0.2.0', /prevResult\.ip4\.ip: must be ip\/prefix \(got "nope"\)/],
      ['a string', '1.0.0', /prevResult: .*\(got "a string"\)/],
    ];
    for (const [raw, version, details] of cases) {
      assert.throws(() => parsePrevResult(raw, version), (err: CniError) => {
        assert.equal(err.code, 7);
        assert.equal(err.message, 'invalid prevResult');
        assert.match(err.details, details);
        return true;
      }, JSON.stringify(raw));
    }
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeRequest, runtimeRequestNames } from './testdata/runtime-requests.ts';
import { parseCniArgs } from './cni-args.ts';
import { MAX_CONFIG_BYTES, type NetConf, parseNetConf, peekCniVersion, requestedIps, requestedMac } from './config.ts';
import { CniError } from './errors.ts';

const fixture = runtimeRequest;

const BASE = { cniVersion: '1.1.0', name: 'pier', type: 'pier' };
function parse(extra: Record<string, unknown>): NetConf {
  return parseNetConf(JSON.stringify({ ...BASE, ...extra }));
}
function refusal(stdin: string | Record<string, unknown>): CniError {
  try {
    parseNetConf(typeof stdin === 'string' ? stdin : JSON.stringify({ ...BASE, ...stdin }));
  } catch (err) {
    assert.ok(err instanceof CniError, String(err));
    assert.ok(!/\n\s+at /.test(err.details), 'no stack in details');
    return err;
  }
  assert.fail(`expected ${JSON.stringify(stdin)} to be refused`);
}

describe('parseNetConf', () => {
  it('parses the stdin of every captured ADD, DEL and chained call', () => {
    const files = runtimeRequestNames().filter((f) => !f.includes('VERSION'));
    assert.ok(files.length >= 28);
    for (const file of files) {
      const { stdin } = runtimeRequest(file);
      const conf = parseNetConf(JSON.stringify(stdin));
      assert.equal(conf.name, stdin.name, file);
      assert.equal(conf.cniVersion, stdin.cniVersion, file);
      assert.equal(conf.prevResult !== undefined, stdin.prevResult !== undefined, file);
    }
  });

  it('reads containerd-bridge-ADD into typed fields with the reference defaults', () => {
    const { stdin } = fixture('containerd-bridge-ADD');
    const { raw, ...conf } = parseNetConf(JSON.stringify(stdin));
    assert.deepEqual(raw, stdin);
    assert.deepEqual(conf, {
      cniVersion: '0.4.0',
      name: 'rcpod',
      type: 'bridge',
      bridge: 'rcbr1',
      isGateway: true,
      isDefaultGateway: false,
      forceAddress: false,
      ipMasq: true,
      hairpinMode: true,
      promiscMode: false,
      vlan: 0,
      preserveDefaultVlan: true,
      macspoofchk: false,
      enabledad: false,
      disableContainerInterface: false,
      portIsolation: false,
      ipam: stdin.ipam,
      capabilities: {},
      runtimeConfig: {},
    });
  });

  it('normalises containerd\'s capitalised portMappings and drops its empty HostIP', () => {
    const conf = parseNetConf(JSON.stringify(fixture('containerd-portmap-ADD').stdin));
    assert.deepEqual(conf.capabilities, { portMappings: true });
    assert.deepEqual(conf.runtimeConfig, { portMappings: [{ hostPort: 18090, containerPort: 8080, protocol: 'tcp' }] });
    assert.equal(conf.prevResult?.ips?.[0]?.address, '10.78.0.4/24');
  });

  it('reads podman\'s lowercase portMappings with a hostIP', () => {
    const conf = parseNetConf(JSON.stringify(fixture('podman-portmap-ADD').stdin));
    assert.deepEqual(conf.runtimeConfig.portMappings, [
      { hostPort: 18080, containerPort: 8080, protocol: 'tcp' },
      { hostPort: 18081, containerPort: 8081, protocol: 'udp', hostIP: '127.0.0.1' },
    ]);
  });

  it('matches every runtimeConfig key case-insensitively, at every level', () => {
    const conf = parse({
      runtimeConfig: {
        PortMappings: [{ HOSTPORT: 80, containerport: 8080, Protocol: 'SCTP', hostip: 'fd00::1' }],
        IPs: ['10.1.0.5/24'],
        Mac: 'C2:11:22:33:44:55',
        DNS: { Servers: ['10.96.0.10'], Searches: ['svc.cluster.local'], Options: ['ndots:5'], Domain: 'cluster.local' },
        Bandwidth: { IngressRate: 1000, IngressBurst: 2000, EgressRate: 3000, EgressBurst: 4000 },
        Aliases: { MyNet: ['web', 'Web2'] },
        CgroupPath: '/kubepods/pod1',
      },
    });
    assert.deepEqual(conf.runtimeConfig, {
      portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'sctp', hostIP: 'fd00::1' }],
      ips: ['10.1.0.5/24'],
      mac: 'c2:11:22:33:44:55',
      dns: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'], domain: 'cluster.local' },
      bandwidth: { ingressRate: 1000, ingressBurst: 2000, egressRate: 3000, egressBurst: 4000 },
      aliases: { MyNet: ['web', 'Web2'] },
      cgroupPath: '/kubepods/pod1',
    });
  });

  it('lets the later of two keys that fold together win, as Go does', () => {
    const conf = parseNetConf(`{"cniVersion":"1.1.0","name":"n","type":"t","runtimeConfig":{"portMappings":[{"hostPort":1,"HostPort":2,"containerPort":3}]}}`);
    assert.equal(conf.runtimeConfig.portMappings?.[0]?.hostPort, 2);
  });

  it('defaults the protocol to tcp', () => {
    assert.equal(parse({ runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 2 }] } }).runtimeConfig.portMappings?.[0]?.protocol, 'tcp');
    assert.equal(parse({ runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: '' }] } }).runtimeConfig.portMappings?.[0]?.protocol, 'tcp');
  });

  it('turns a flat ipRanges list into one range set per family, and keeps range sets as they are', () => {
    const flat = parse({
      runtimeConfig: {
        ipRanges: [{ Subnet: '10.1.0.0/24', RangeStart: '10.1.0.10' }, { Subnet: 'fd00::/64' }, { Subnet: '10.2.0.0/24', Gateway: '10.2.0.1' }],
      },
    });
    assert.deepEqual(flat.runtimeConfig.ipRanges, [
      [{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.10' }, { subnet: '10.2.0.0/24', gateway: '10.2.0.1' }],
      [{ subnet: 'fd00::/64' }],
    ]);
    const sets = parse({ runtimeConfig: { ipRanges: [[{ subnet: '10.1.0.0/24' }], [{ SUBNET: '10.2.0.0/24' }]] } });
    assert.deepEqual(sets.runtimeConfig.ipRanges, [[{ subnet: '10.1.0.0/24' }], [{ subnet: '10.2.0.0/24' }]]);
  });

  it('matches top-level and args.cni keys case-insensitively too, keeping unknown fields in raw', () => {
    const conf = parse({ MTU: 1400, IsGateway: true, args: { CNI: { IPs: ['10.0.0.9'] }, k8s: { x: 1 } }, someFutureField: { a: 1 } });
    assert.equal(conf.mtu, 1400);
    assert.equal(conf.isGateway, true);
    assert.deepEqual(conf.args, { cni: { ips: ['10.0.0.9'] } });
    assert.deepEqual(conf.raw.someFutureField, { a: 1 });
  });

  it('matches keys case-insensitively at every depth: ipam, dns, vlanTrunk, labels, dataDir, nftTable, GC list', () => {
    const conf = parse({
      IPAM: { Type: 'pier-ipam', Ranges: [[{ Subnet: '10.1.0.0/24', RANGESTART: '10.1.0.9' }]], Routes: [{ Dst: '0.0.0.0/0', GW: '10.1.0.1' }], DataDir: '/x', ResolvConf: '/r' },
      DNS: { Nameservers: ['10.0.0.53'], Domain: 'd', Search: ['s'], Options: ['o'] },
      VlanTrunk: [{ ID: 7 }, { MinId: 3, MaxId: 4 }],
      Args: { Cni: { Labels: [{ Key: 'app', Value: 'web' }] } },
      DataDir: '/var/lib/own',
      NftTable: 'pier_x',
      'CNI.dev/Valid-Attachments': [{ ContainerID: 'c1', IfName: 'eth0' }],
    });
    assert.deepEqual(conf.ipam, { type: 'pier-ipam', ranges: [[{ subnet: '10.1.0.0/24', rangeStart: '10.1.0.9' }]], routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }], dataDir: '/x', resolvConf: '/r' });
    assert.deepEqual(conf.dns, { nameservers: ['10.0.0.53'], domain: 'd', search: ['s'], options: ['o'] });
    assert.deepEqual(conf.vlanTrunk, [3, 4, 7]);
    assert.deepEqual(conf.args?.cni?.labels, [{ key: 'app', value: 'web' }]);
    assert.equal(conf.dataDir, '/var/lib/own');
    assert.equal(conf.nftTable, 'pier_x');
    assert.deepEqual(conf.validAttachments, [{ containerID: 'c1', ifname: 'eth0' }]);
    // A delegated IPAM's own fields and map keys (capabilities, aliases) keep their spelling.
    const other = parse({ ipam: { type: 'whereabouts', Range: '10.2.0.0/16' }, capabilities: { PortMappings: true } });
    assert.deepEqual(other.ipam, { type: 'whereabouts', Range: '10.2.0.0/16' });
    assert.deepEqual(other.capabilities, { PortMappings: true });
  });

  it('reads keys named like Object.prototype members as plain unknown fields, at any depth', () => {
    const odd = { constructor: { a: 1 }, toString: { b: 2 }, hasOwnProperty: [{ c: 3 }], valueOf: 1 };
    const text = JSON.stringify({ ...BASE, ...odd, ipam: { type: 'pier-ipam', ...odd }, dns: odd, runtimeConfig: odd, args: { cni: odd } })
      .replace('"constructor"', '"__proto__"');
    const conf = parseNetConf(text);
    assert.deepEqual(conf.raw.toString, { b: 2 });
    assert.equal(conf.ipam?.type, 'pier-ipam');
  });

  it('treats a JSON null at any depth like an absent field', () => {
    const conf = parse({ ipam: { type: 'pier-ipam', ranges: [[{ subnet: '10.1.0.0/24', gateway: null }]], resolvConf: null }, dns: { domain: null, nameservers: ['10.0.0.53'] } });
    assert.deepEqual(conf.ipam, { type: 'pier-ipam', ranges: [[{ subnet: '10.1.0.0/24' }]] });
    assert.deepEqual(conf.dns, { nameservers: ['10.0.0.53'] });
  });

  it('applies the bridge rules: isDefaultGateway implies isGateway, mtu 0 is unset, vlanTrunk expands', () => {
    const conf = parse({ isDefaultGateway: true, mtu: 0, vlanTrunk: [{ id: 7 }, { minID: 3, maxID: 5 }, { id: 4 }] });
    assert.equal(conf.isGateway, true);
    assert.equal(conf.isDefaultGateway, true);
    assert.equal(conf.mtu, undefined);
    assert.deepEqual(conf.vlanTrunk, [3, 4, 5, 7]);
    assert.equal(conf.bridge, 'cni0');
    assert.equal(conf.preserveDefaultVlan, true);
    assert.equal(parse({ preserveDefaultVlan: false }).preserveDefaultVlan, false);
  });

  it('keeps the ipam section whole, and reads an untyped ipam as none', () => {
    const ipam = { type: 'pier', ranges: [[{ subnet: '10.1.0.0/24' }]], dataDir: '/var/lib/pier', Whatever: [1] };
    assert.deepEqual(parse({ ipam }).ipam, ipam);
    assert.equal(parse({ ipam: {} }).ipam, undefined);
    assert.equal(parse({ ipam: { type: '' } }).ipam, undefined);
  });

  it('treats JSON null like an absent field, and a missing cniVersion as 0.1.0', () => {
    const conf = parseNetConf('{"name":"n","type":"t","mtu":null,"runtimeConfig":{"dns":null},"prevResult":null}');
    assert.equal(conf.cniVersion, '0.1.0');
    assert.equal(conf.mtu, undefined);
    assert.equal(conf.prevResult, undefined);
    assert.deepEqual(conf.runtimeConfig, {});
  });

  it('reads the GC attachment list from either key, preferring cni.dev/valid-attachments', () => {
    const list = [{ containerID: 'c1', ifname: 'eth0' }];
    assert.deepEqual(parse({ 'cni.dev/valid-attachments': list }).validAttachments, list);
    assert.deepEqual(parse({ 'cni.dev/attachments': list }).validAttachments, list);
    assert.deepEqual(parse({ 'cni.dev/attachments': [], 'cni.dev/valid-attachments': list }).validAttachments, list);
    assert.equal(parse({}).validAttachments, undefined);
  });

  it('reads logFile, logLevel, dns and args.cni labels', () => {
    const conf = parse({
      logFile: '/var/log/pier-test.log',
      logLevel: 'debug',
      dns: { nameservers: ['10.96.0.10'], search: ['a'] },
      args: { cni: { labels: [{ key: 'app', value: 'web' }], mac: '02:00:00:00:00:01' } },
    });
    assert.equal(conf.logFile, '/var/log/pier-test.log');
    assert.equal(conf.logLevel, 'debug');
    assert.deepEqual(conf.dns, { nameservers: ['10.96.0.10'], search: ['a'] });
    assert.deepEqual(conf.args?.cni?.labels, [{ key: 'app', value: 'web' }]);
  });
});

describe('parseNetConf rejections', () => {
  it('refuses bad JSON with code 6 carrying the parse error', () => {
    const err = refusal('{"name": ');
    assert.equal(err.code, 6);
    assert.equal(err.message, 'error decoding network config');
    assert.match(err.details, /JSON/);
  });

  it('refuses JSON that is not an object with code 6', () => {
    for (const text of ['[]', 'null', '"x"', '42']) assert.equal(refusal(text).code, 6, text);
  });

  it('refuses stdin over 1 MiB with code 6 before parsing it', () => {
    const big = JSON.stringify({ ...BASE, pad: 'x'.repeat(MAX_CONFIG_BYTES) });
    const err = refusal(big);
    assert.equal(err.code, 6);
    assert.match(err.message, /too large/);
    assert.equal(refusal(Buffer.from(big) as unknown as string).code, 6);
  });

  it('refuses an unsupported cniVersion with code 1 and a non-string one with code 7', () => {
    assert.equal(refusal({ cniVersion: '0.5.0' }).code, 1);
    const err = refusal({ cniVersion: 1 });
    assert.equal(err.code, 7);
    assert.match(err.details, /cniVersion: .*\(got 1\)/);
  });

  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['bad name', { name: 'my net' }, /^name: must match .* \(got "my net"\)$/],
    ['missing name', { name: undefined }, /^name: is required/],
    ['missing type', { type: undefined }, /^type: is required/],
    ['mtu too small', { mtu: 67 }, /^mtu: must be 68\.\.65535 \(got 67\)$/],
    ['mtu too large', { mtu: 65536 }, /^mtu: must be 68\.\.65535 \(got 65536\)$/],
    ['mtu as a string', { mtu: '1500' }, /^mtu: .*\(got "1500"\)$/],
    ['vlan out of range', { vlan: 4095 }, /^vlan: must be 0\.\.4094 \(got 4095\)$/],
    ['flag of the wrong type', { isGateway: 'yes' }, /^isGateway: .*\(got "yes"\)$/],
    ['hairpin and promisc', { hairpinMode: true, promiscMode: true }, /^promiscMode: cannot be set together with hairpinMode \(got true\)$/],
    ['vlan and vlanTrunk', { vlan: 5, vlanTrunk: [{ id: 6 }] }, /^vlanTrunk: cannot be set together with vlan/],
    ['trunk minID > maxID', { vlanTrunk: [{ minID: 9, maxID: 3 }] }, /^vlanTrunk\[0\]: minID is greater than maxID/],
    ['trunk id out of range', { vlanTrunk: [{ id: 0 }] }, /^vlanTrunk\[0\]\.id: must be 1\.\.4094 \(got 0\)$/],
    ['bridge name too long', { bridge: 'a-very-long-bridge' }, /^bridge: bridge name is longer than 15 bytes/],
    ['ipam not an object', { ipam: 'host-local' }, /^ipam: .*\(got "host-local"\)$/],
    ['capabilities not booleans', { capabilities: { portMappings: 'yes' } }, /^capabilities\.portMappings: /],
    ['host port 0', { runtimeConfig: { portMappings: [{ HostPort: 0, ContainerPort: 80 }] } }, /^runtimeConfig\.portMappings\[0\]\.hostPort: must be 1\.\.65535 \(got 0\)$/],
    ['container port too high', { runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 70000 }] } }, /^runtimeConfig\.portMappings\[0\]\.containerPort: must be 1\.\.65535/],
    ['bad protocol', { runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'icmp' }] } }, /^runtimeConfig\.portMappings\[0\]\.protocol: must be tcp, udp or sctp \(got "icmp"\)$/],
    ['bad hostIP', { runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 2, hostIP: 'localhost' }] } }, /^runtimeConfig\.portMappings\[0\]\.hostIP: .*\(got "localhost"\)$/],
    ['bad requested IP', { runtimeConfig: { ips: ['10.0.0.300'] } }, /^runtimeConfig\.ips\[0\]: must be an IP address or ip\/prefix \(got "10\.0\.0\.300"\)$/],
    ['multicast MAC', { runtimeConfig: { mac: '01:00:5e:00:00:01' } }, /^runtimeConfig\.mac: must be a 6-byte unicast MAC address \(got "01:00:5e:00:00:01"\)$/],
    ['8-byte MAC', { runtimeConfig: { mac: '02:00:00:00:00:00:00:01' } }, /^runtimeConfig\.mac: must be a 6-byte unicast/],
    ['bad range subnet', { runtimeConfig: { ipRanges: [[{ subnet: '10.0.0.0' }]] } }, /^runtimeConfig\.ipRanges\[0\]\[0\]\.subnet: must be a CIDR \(got "10\.0\.0\.0"\)$/],
    ['negative bandwidth', { runtimeConfig: { bandwidth: { IngressRate: -1 } } }, /^runtimeConfig\.bandwidth\.ingressRate: .*\(got -1\)$/],
    ['bad args.cni.ips', { args: { cni: { ips: ['nope'] } } }, /^args\.cni\.ips\[0\]: .*\(got "nope"\)$/],
    ['bad args.cni.mac', { args: { cni: { mac: 'zz' } } }, /^args\.cni\.mac: .*\(got "zz"\)$/],
    ['relative logFile', { logFile: 'pier.log' }, /^logFile: must be an absolute path \(got "pier\.log"\)$/],
    ['unknown logLevel', { logLevel: 'trace' }, /^logLevel: must be one of error, warn, info, debug \(got "trace"\)$/],
    ['bad attachments', { 'cni.dev/valid-attachments': [{ containerID: 'c' }] }, /^cni\.dev\/valid-attachments\[0\]\.ifname: /],
  ];
  for (const [what, extra, details] of cases) {
    it(`refuses ${what} with code 7 naming the path and value`, () => {
      const err = refusal(extra);
      assert.equal(err.code, 7);
      assert.equal(err.message, 'invalid network config');
      assert.match(err.details, details);
    });
  }

  it('names every bad field in one error', () => {
    const err = refusal({ mtu: 1, vlan: -1, name: '_x' });
    assert.equal(err.details.split('; ').length, 3);
    assert.match(err.details, /name: /);
    assert.match(err.details, /mtu: /);
    assert.match(err.details, /vlan: /);
  });

  it('refuses a malformed prevResult with code 7 naming the path', () => {
    const err = refusal({ cniVersion: '0.4.0', prevResult: { ips: [{ address: 'x' }] } });
    assert.equal(err.code, 7);
    assert.match(err.details, /^prevResult\.ips\[0\]\.address: .*\(got "x"\)$/);
  });
});

describe('peekCniVersion', () => {
  it('finds a supported version even in an otherwise invalid config, and nothing otherwise', () => {
    assert.equal(peekCniVersion('{"cniVersion":"0.3.1","mtu":"bad"}'), '0.3.1');
    assert.equal(peekCniVersion('{"CNIVersion":"1.0.0"}'), '1.0.0');
    assert.equal(peekCniVersion('{"cniVersion":"7.0.0"}'), undefined);
    assert.equal(peekCniVersion('not json'), undefined);
  });
});

describe('requestedIps and requestedMac', () => {
  const args = parseCniArgs('IgnoreUnknown=1;IP=10.0.0.3;MAC=02:AA:00:00:00:03');

  it('prefer runtimeConfig, then args.cni, then CNI_ARGS', () => {
    const all = parse({
      runtimeConfig: { ips: ['10.0.0.1/24'], mac: '02:00:00:00:00:01' },
      args: { cni: { ips: ['10.0.0.2'], mac: '02:00:00:00:00:02' } },
    });
    assert.deepEqual(requestedIps(all, args), ['10.0.0.1/24']);
    assert.equal(requestedMac(all, args), '02:00:00:00:00:01');
    const argsOnly = parse({ args: { cni: { ips: ['10.0.0.2'], mac: '02:00:00:00:00:02' } } });
    assert.deepEqual(requestedIps(argsOnly, args), ['10.0.0.2']);
    assert.equal(requestedMac(argsOnly, args), '02:00:00:00:00:02');
    const none = parse({ runtimeConfig: { ips: [] } });
    assert.deepEqual(requestedIps(none, args), ['10.0.0.3']);
    assert.equal(requestedMac(none, args), '02:aa:00:00:00:03');
    assert.deepEqual(requestedIps(none, parseCniArgs('')), []);
    assert.equal(requestedMac(none, parseCniArgs('')), undefined);
  });

  it('read podman\'s static IP and MAC from CNI_ARGS', () => {
    const f = fixture('podman-bridge-ADD');
    const conf = parseNetConf(JSON.stringify(f.stdin));
    const cniArgs = parseCniArgs(f.env.CNI_ARGS);
    assert.deepEqual(requestedIps(conf, cniArgs), ['10.77.0.50']);
    assert.equal(requestedMac(conf, cniArgs), '02:42:0a:4d:00:32');
  });

  it('refuse a CNI_ARGS MAC that is not a 6-byte unicast address with code 4', () => {
    for (const mac of ['03:00:00:00:00:01', '00:00:00:00:00:00', '02:00:00:00:00', 'zz:00:00:00:00:01', '02:00-00:00:00:01']) {
      assert.throws(() => requestedMac(parse({}), parseCniArgs(`MAC=${mac}`)), (err: CniError) => err.code === 4 && err.details.includes(mac), mac);
    }
  });
});

it("a config nested too deeply is a decoding failure (6), not a stack overflow", () => {
  const d = 100_000;
  for (const nest of [`${'['.repeat(d)}${']'.repeat(d)}`, `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`]) {
    const text = `{"cniVersion":"1.0.0","name":"n","type":"pier","runtimeConfig":${nest}}`;
    assert.throws(() => parseNetConf(text), (e: unknown) => e instanceof CniError && e.code === 6 && /nested too deeply/.test(e.message));
  }
  const ok = `{"cniVersion":"1.0.0","name":"n","type":"pier","x":${'{"a":'.repeat(30)}1${'}'.repeat(30)}}`;
  assert.equal(parseNetConf(ok).name, 'n');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentHelp, FLAGS, FlagError, parseAgentFlags } from './flags.ts';
import { formatLine, jsonLogger } from './log.ts';
import { backoffDelay } from './backoff.ts';

test('defaults, with the node name from NODE_NAME and the kubeconfig from KUBECONFIG', () => {
  const f = parseAgentFlags([], { NODE_NAME: 'node-1', KUBECONFIG: '/etc/k.conf' }, 'host')!;
  assert.equal(f.nodeName, 'node-1');
  assert.equal(f.kubeconfig, '/etc/k.conf');
  assert.equal(f.cniConfDir, '/etc/cni/net.d');
  assert.equal(f.dataDir, '/var/lib/pier/networks');
  assert.deepEqual(f.metricsAddr, { host: '127.0.0.1', port: 9478 });
  assert.deepEqual([f.backend, f.vxlanName, f.vxlanVni, f.vxlanPort, f.bridge, f.mtu], ['auto', 'pier.vxlan', 1, 8473, 'cni0', undefined]);
  assert.deepEqual(f.clusterCidrs, []);
  assert.equal(parseAgentFlags([], {}, 'my-host')!.nodeName, 'my-host');
  assert.equal(parseAgentFlags([], {}, 'h')!.kubeconfig, undefined, 'in-cluster');
});

test('flags win over the environment; both spellings; --help', () => {
  const f = parseAgentFlags(['--node-name', 'n2', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56', '--metrics-addr', '[::1]:9100', '--mtu', '1400', '--backend', 'vxlan'], { NODE_NAME: 'n1' }, 'h')!;
  assert.equal(f.nodeName, 'n2');
  assert.deepEqual(f.clusterCidrs.map((c) => c.text), ['10.244.0.0/16', 'fd00:10:244::/56']);
  assert.deepEqual(f.metricsAddr, { host: '::1', port: 9100 });
  assert.equal(f.mtu, 1400);
  assert.ok(f.explicit.has('--mtu') && !f.explicit.has('--bridge'));
  assert.equal(parseAgentFlags(['--metrics-addr', 'off'], {}, 'h')!.metricsAddr, undefined);
  assert.equal(parseAgentFlags(['--node-name', 'x', '--help'], {}, 'h'), undefined);
});

test('bad flags are one clear error each', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--nope'], /unknown flag "--nope"/],
    [['--node-name'], /--node-name needs a value/],
    [['--node-name', 'Bad_Name'], /not a valid Node name/],
    [['--cluster-cidr', '10.244.0.5/16'], /--cluster-cidr: .*host bits/],
    [['--cluster-cidr', '10.244.0.0/16,10.245.0.0/16'], /one network per family/],
    [['--metrics-addr', '9478'], /HOST:PORT/],
    [['--backend', 'bgp'], /auto, host-gw or vxlan/],
    [['--vxlan-vni', '0'], /1 to 16777215/],
    [['--vxlan-port', '70000'], /1 to 65535/],
    [['--bridge', 'a-name-far-too-long'], /interface name/],
    [['--cni-conf-dir', 'relative'], /absolute path/],
    [['--cni-version', '2.0.0'], /--cni-version/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseAgentFlags(argv, {}, 'h'), (e: Error) => e instanceof FlagError && re.test(e.message), argv.join(' '));
});

test('--help lists every flag with its default', () => {
  const help = agentHelp('1.2.3');
  for (const f of FLAGS) {
    assert.ok(help.includes(f.name), f.name);
    if (f.def !== undefined) assert.ok(help.includes(`(default ${f.def})`), `${f.name} default`);
  }
});

test('JSON log lines with levels; below the floor nothing is written', () => {
  const lines: string[] = [];
  const log = jsonLogger((l) => lines.push(l), 'info', () => new Date('2025-01-01T00:00:00Z'));
  log.debug('hidden');
  log.warn('node refused', { node: 'x', reason: 'bad', error: new Error('boom'), msg: 'cannot override' });
  assert.deepEqual(lines, ['{"time":"2025-01-01T00:00:00.000Z","level":"warn","msg":"node refused","node":"x","reason":"bad","error":"boom"}\n']);
  assert.equal(formatLine(new Date(0), 'info', 'a\nb'), '{"time":"1970-01-01T00:00:00.000Z","level":"info","msg":"a\\nb"}\n');
});

test('backoff grows, is capped, and is jittered within [step/2, step]', () => {
  assert.equal(backoffDelay(0, { baseMs: 500, capMs: 30000 }, 0), 250);
  assert.equal(backoffDelay(0, { baseMs: 500, capMs: 30000 }, 0.999999), 500);
  assert.equal(backoffDelay(3, { baseMs: 500, capMs: 30000 }, 0), 2000);
  assert.equal(backoffDelay(50, { baseMs: 500, capMs: 30000 }, 0.5), 22500);
});

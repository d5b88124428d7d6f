import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderConflist, writeConflist, CONFLIST_NAME, type ConflistSettings } from './conflist.ts';
import { parseNetConf } from '../cni/config.ts';

const settings: ConflistSettings = { name: 'pier', cniVersion: '1.0.0', bridge: 'cni0', mtu: 1450, dataDir: '/var/lib/pier/networks', readyFile: '/run/pier/agent/ready' };

test('dual stack: ranges per family (IPv4 first), default routes, hostPorts, no masquerade, the ready file', () => {
  const { text, notes } = renderConflist(['fd00:10:244:1::/64', '10.244.1.0/24'], settings);
  assert.deepEqual(notes, []);
  assert.equal(text, `${JSON.stringify({
    cniVersion: '1.0.0',
    name: 'pier',
    plugins: [{
      type: 'pier', bridge: 'cni0', isGateway: true, isDefaultGateway: true, ipMasq: false, hairpinMode: true, mtu: 1450,
      capabilities: { portMappings: true }, readyFile: '/run/pier/agent/ready',
      ipam: { type: 'pier-ipam', ranges: [[{ subnet: '10.244.1.0/24' }], [{ subnet: 'fd00:10:244:1::/64' }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }], dataDir: '/var/lib/pier/networks' },
    }],
  }, null, 2)}\n`);
});

test('the plugin accepts the entry it renders, as a runtime would send it', () => {
  const list = JSON.parse(renderConflist(['10.244.1.0/24'], settings).text);
  const conf = parseNetConf(JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] }));
  assert.equal(conf.readyFile, '/run/pier/agent/ready');
  assert.equal(conf.ipMasq, false);
  assert.equal(conf.mtu, 1450);
  assert.deepEqual(conf.capabilities, { portMappings: true });
});

test('a template keeps its fields and other plugins; the agent owns ranges, dataDir, readyFile and ipMasq', () => {
  const template = {
    cniVersion: '1.1.0',
    name: 'mynet',
    plugins: [
      { type: 'pier', bridge: 'br-k8s', mtu: 9000, ipMasq: true, hairpinMode: false, logLevel: 'debug', ipam: { type: 'host-local', ranges: [[{ subnet: '192.168.0.0/24' }]], dataDir: '/x' } },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
  const { text, notes } = renderConflist(['10.244.1.0/24'], { ...settings, template }, { mtu: true });
  const out = JSON.parse(text);
  assert.equal(out.cniVersion, '1.1.0');
  assert.equal(out.name, 'mynet');
  assert.deepEqual(out.plugins[1], template.plugins[1]);
  const p = out.plugins[0];
  assert.equal(p.bridge, 'br-k8s', 'the template wins over a default');
  assert.equal(p.mtu, 1450, 'an explicit --mtu wins over the template');
  assert.equal(p.hairpinMode, false);
  assert.equal(p.logLevel, 'debug');
  assert.equal(p.ipMasq, false);
  assert.deepEqual(p.ipam, { type: 'pier-ipam', ranges: [[{ subnet: '10.244.1.0/24' }]], dataDir: '/var/lib/pier/networks', routes: [{ dst: '0.0.0.0/0' }] });
  assert.deepEqual(notes, [{ field: 'ipMasq', was: true, now: false }, { field: 'ipam.type', was: 'host-local', now: 'pier-ipam' }]);
  assert.equal(template.plugins[0].ipMasq, true, 'the template object is not changed');
});

test('writeConflist writes atomically and only when the bytes change', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pier-conflist-'));
  try {
    const { text } = renderConflist(['10.244.1.0/24'], settings);
    assert.equal(writeConflist(dir, text), true);
    const first = statSync(join(dir, CONFLIST_NAME)).ino;
    assert.equal(writeConflist(dir, text), false);
    assert.equal(statSync(join(dir, CONFLIST_NAME)).ino, first, 'not rewritten');
    const other = renderConflist(['10.244.2.0/24'], settings).text;
    assert.equal(writeConflist(dir, other), true);
    assert.notEqual(statSync(join(dir, CONFLIST_NAME)).ino, first, 'replaced by rename');
    assert.equal(readFileSync(join(dir, CONFLIST_NAME), 'utf8'), other);
    assert.deepEqual(readdirSync(dir), [CONFLIST_NAME], 'no temp file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

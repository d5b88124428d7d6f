// Every example in conf/ is a config Pier accepts, as a runtime would send it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { listVersion, loadNetworkConf } from './conf-file.ts';
import { readFileSync } from 'node:fs';
import { compareVersions, isSupportedVersion } from '../cni/versions.ts';
import { parseNetConf } from '../cni/config.ts';
import { parseIpamConfig } from '../ipam/config.ts';
import { defaultNetworkConf } from './default-network.ts';

const dir = join(import.meta.dirname, '../../conf');

test('each example config in conf/ parses, IPAM included', () => {
  const files = readdirSync(dir).filter((f) => /\.(conf|conflist)$/.test(f));
  assert.ok(files.length >= 4, files.join(','));
  for (const f of files) {
    const conf = loadNetworkConf(join(dir, f));
    assert.equal(conf.type, 'pier', f);
    const parsed = parseNetConf(JSON.stringify(conf));
    assert.equal(parsed.ipam?.type, 'pier-ipam', f);
    const ipam = parseIpamConfig(parsed.ipam, parsed.name);
    assert.ok(ipam.ranges.length >= 1, f);
  }
});

test('each example in conf/ is read by the runtimes users run today', () => {
  // libcni 1.1 (containerd 1.6 and 1.7, CRI-O up to 1.30, podman 4, Debian 12's cnitool) reads
  // `cniVersion` alone and refuses results newer than 1.0.0, after the plugin wired the pod.
  for (const f of readdirSync(dir).filter((n) => /\.(conf|conflist)$/.test(n))) {
    const doc = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    assert.ok(isSupportedVersion(doc.cniVersion), f);
    assert.ok(compareVersions(doc.cniVersion, '1.0.0') <= 0, `${f} declares cniVersion ${doc.cniVersion}: libcni 1.1 refuses its results`);
    // libcni 1.2 and newer take the highest of cniVersions: STATUS and GC need 1.1.0.
    if (doc.cniVersions !== undefined) {
      assert.ok(/\.conflist$/.test(f), `${f}: cniVersions is read from conflists only`);
      assert.ok(doc.cniVersions.every(isSupportedVersion), f);
      assert.ok(doc.cniVersions.includes(doc.cniVersion), f);
    }
  }
});

test('listVersion picks the highest known version of cniVersions and cniVersion, as libcni 1.2+', () => {
  assert.equal(listVersion({ cniVersion: '1.0.0', cniVersions: ['1.0.0', '1.1.0'] }), '1.1.0');
  assert.equal(listVersion({ cniVersions: ['0.4.0', '1.0.0'] }), '1.0.0');
  assert.equal(listVersion({ cniVersion: '1.0.0', cniVersions: ['9.9.9'] }), '1.0.0');
  assert.equal(listVersion({ cniVersion: '0.4.0' }), '0.4.0');
  assert.equal(listVersion({ cniVersion: 'x' }), 'x');
  assert.equal(loadNetworkConf(join(dir, 'pier-cnitool.conflist')).cniVersion, '1.1.0');
});

test('the embedded default network parses and is dual stack', () => {
  const parsed = parseNetConf(JSON.stringify(defaultNetworkConf()));
  const ipam = parseIpamConfig(parsed.ipam, parsed.name);
  assert.deepEqual(ipam.ranges.map((s) => s[0].family), [4, 6]);
  assert.equal(parsed.bridge, 'pier0');
});

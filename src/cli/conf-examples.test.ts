// Every example in conf/ is a config Pier accepts, as a runtime would send it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadNetworkConf } from './conf-file.ts';
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

test('the embedded default network parses and is dual stack', () => {
  const parsed = parseNetConf(JSON.stringify(defaultNetworkConf()));
  const ipam = parseIpamConfig(parsed.ipam, parsed.name);
  assert.deepEqual(ipam.ranges.map((s) => s[0].family), [4, 6]);
  assert.equal(parsed.bridge, 'pier0');
});

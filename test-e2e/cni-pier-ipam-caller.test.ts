// pier-ipam as an IPAM plugin ignores the fields that belong to the plugin calling it: the
// reference bridge (Debian's, in /usr/lib/cni) with its own options that Pier as a main plugin
// does not implement, run in a TestWorld's host netns.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REFERENCE_PLUGINS, TestWorld, ensureBuilt, Worlds, ok } from './cni-harness.ts';
import { ipJson } from './helpers.ts';

const BRIDGE = join(REFERENCE_PLUGINS, 'bridge');
const worlds = new Worlds();

before(() => {
  ensureBuilt();
  assert.ok(existsSync(BRIDGE), 'the reference bridge is installed (scripts/install-deps.sh)');
});
after(() => worlds.cleanupAll());

function reservations(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== 'lock' && n !== 'attachments' && !/^last_reserved_ip\.\d+$/.test(n)).sort();
}

describe('the reference bridge with "ipam": {"type": "pier-ipam"}', () => {
  for (const field of ['macspoofchk', 'disableContainerInterface'] as const) {
    it(`${field}: true is the bridge's business; ADD, CHECK and DEL succeed`, () => {
      const w = worlds.make();
      const { nftTable: _, ...base } = w.conf('1.0.0');
      const conf = { ...base, type: 'bridge', [field]: true };
      const pod = w.addPod();
      const netns = w.netnsPath(pod);
      // The reference bridge runs `nft` for macspoofchk: it needs a PATH.
      const id = { containerId: `caller-${field.length}`, ifname: 'eth0', plugin: BRIDGE, extraEnv: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } };
      const res = ok(w.call({ command: 'ADD', ...id, netns }, conf), 'ADD');
      const address: string = res.ips[0].address;
      assert.match(address, /^10\.213\.0\.\d+\/24$/);
      assert.deepEqual(reservations(join(w.dataDir, conf.name)), [address.split('/')[0]], 'pier-ipam reserved it');
      const eth0 = ipJson(pod, 'addr', 'show', 'dev', 'eth0')[0];
      assert.ok(eth0.addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === address));
      ok(w.call({ command: 'CHECK', ...id, netns }, { ...conf, prevResult: res }), 'CHECK');
      ok(w.call({ command: 'DEL', ...id, netns }, { ...conf, prevResult: res }), 'DEL');
      assert.deepEqual(reservations(join(w.dataDir, conf.name)), []);
    });
  }
});

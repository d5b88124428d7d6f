// `vlan` and `vlanTrunk` reach the kernel: VLAN filtering on the bridge (also on one that
// existed before Pier, as the reference bridge turns it on), the port's VLANs, and traffic
// between two pods of one VLAN; `vlan` with `isGateway` is refused. On a kernel built without
// bridge VLAN filtering those are skipped, and ADD must say why it fails. Run by dist/pier in a
// TestWorld's host netns.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorld, ensureBuilt, Worlds, ok, fails } from './cni-harness.ts';
import { ipJson, ping, uniquePrefix } from './helpers.ts';

/** Whether this kernel has bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING), tried in a throwaway netns. */
function kernelHasVlanFiltering(): boolean {
  const ns = `${uniquePrefix()}-vlanprobe`;
  assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
  try {
    return spawnSync('ip', ['-n', ns, 'link', 'add', 'probe0', 'type', 'bridge', 'vlan_filtering', '1']).status === 0;
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
const VLAN_FILTERING = kernelHasVlanFiltering();
const needsVlan = { skip: VLAN_FILTERING ? false : 'this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)' };

const worlds = new Worlds();
before(() => ensureBuilt());
after(() => worlds.cleanupAll());

function vlanFiltering(w: TestWorld): number | undefined {
  const br = ipJson(w.host, '-d', 'link', 'show', 'dev', `${w.prefix}br`)[0];
  return br?.linkinfo?.info_data?.vlan_filtering;
}

/** The VLANs of a bridge port: `{vlan, flags}` as `bridge -j vlan show` reports them. */
function portVlans(w: TestWorld, port: string): Array<{ vlan: number; flags?: string[] }> {
  const r = w.exec('bridge', ['-j', 'vlan', 'show', 'dev', port]);
  assert.equal(r.status, 0, r.stderr);
  const all = JSON.parse(r.stdout || '[]') as Array<{ ifname: string; vlans: Array<{ vlan: number; flags?: string[] }> }>;
  return all.find((x) => x.ifname === port)?.vlans ?? [];
}

/** A VLAN network: no gateway (refused with vlan), pods talk inside their subnet. */
function vlanConf(w: TestWorld, extra: Record<string, unknown>) {
  const conf = w.conf('1.0.0', { extra: { isGateway: false, ...extra } });
  return { ...conf, ipam: { ...conf.ipam, routes: [] } };
}

describe('vlan', () => {
  it('turns VLAN filtering on for a bridge that existed before Pier, and sets the port\'s PVID', needsVlan, () => {
    const w = worlds.make();
    assert.equal(w.exec('ip', ['link', 'add', `${w.prefix}br`, 'type', 'bridge']).status, 0);
    assert.equal(vlanFiltering(w), 0, 'the bridge starts without VLAN filtering');
    const conf = vlanConf(w, { vlan: 100, preserveDefaultVlan: false });
    const [a, b] = [w.addPod(), w.addPod()];
    const ra = ok(w.call({ command: 'ADD', containerId: 'v-a', netns: w.netnsPath(a), ifname: 'eth0' }, conf), 'ADD a');
    const rb = ok(w.call({ command: 'ADD', containerId: 'v-b', netns: w.netnsPath(b), ifname: 'eth0' }, conf), 'ADD b');
    assert.equal(vlanFiltering(w), 1, 'VLAN filtering is on');
    for (const r of [ra, rb]) {
      const vlans = portVlans(w, r.interfaces[1].name);
      assert.deepEqual(vlans.map((v) => v.vlan), [100], `${r.interfaces[1].name}: only VLAN 100 (preserveDefaultVlan false)`);
      assert.deepEqual([...(vlans[0].flags ?? [])].sort(), ['Egress Untagged', 'PVID']);
    }
    assert.ok(ping(a, rb.ips[0].address.split('/')[0]), 'two pods of VLAN 100 reach each other');
    ok(w.call({ command: 'DEL', containerId: 'v-a', netns: w.netnsPath(a), ifname: 'eth0' }, conf), 'DEL a');
    ok(w.call({ command: 'DEL', containerId: 'v-b', netns: w.netnsPath(b), ifname: 'eth0' }, conf), 'DEL b');
  });

  it('vlanTrunk allows its VLANs on the port, next to VLAN 1', needsVlan, () => {
    const w = worlds.make();
    const conf = vlanConf(w, { vlanTrunk: [{ id: 7 }, { minID: 10, maxID: 11 }] });
    const pod = w.addPod();
    const r = ok(w.call({ command: 'ADD', containerId: 'trunk', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'ADD');
    assert.equal(vlanFiltering(w), 1);
    assert.deepEqual(portVlans(w, r.interfaces[1].name).map((v) => v.vlan), [1, 7, 10, 11]);
    ok(w.call({ command: 'DEL', containerId: 'trunk', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 'DEL');
  });

  it('on a kernel without VLAN filtering, ADD fails with code 102 saying so, and leaves nothing', { skip: VLAN_FILTERING && 'this kernel has VLAN filtering' }, () => {
    const w = worlds.make();
    const conf = vlanConf(w, { vlan: 100 });
    const pod = w.addPod();
    const e = fails(w.call({ command: 'ADD', containerId: 'v-none', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 102, 'ADD');
    assert.match(`${e.msg} ${e.details}`, /CONFIG_BRIDGE_VLAN_FILTERING/);
    assert.deepEqual(ipJson(w.host, 'link', 'show', 'type', 'veth'), []);
    assert.deepEqual(ipJson(pod, 'link', 'show').map((l: any) => l.ifname), ['lo']);
    const store = join(w.dataDir, conf.name);
    assert.deepEqual(readdirSync(store).filter((n) => /^\d/.test(n)), [], 'no reservation left');
  });

  it('together with isGateway is refused with code 2 before anything is made', () => {
    const w = worlds.make();
    const conf = w.conf('1.0.0', { extra: { vlan: 100 } });
    const pod = w.addPod();
    const e = fails(w.call({ command: 'ADD', containerId: 'v-gw', netns: w.netnsPath(pod), ifname: 'eth0' }, conf), 2, 'ADD');
    assert.match(e.msg, /isGateway.*vlan/);
    assert.deepEqual(ipJson(w.host, 'link', 'show', 'type', 'veth'), []);
  });
});

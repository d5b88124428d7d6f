// cnitool as users have it: v1.1.2 (libcni 1.1, what Debian 12 ships and containerd 1.6/1.7
// vendor) and the newest one served, each built by `go install .../cnitool@VERSION`
// (scripts/go-tools.sh, cached per version). cnitool runs inside a throwaway netns that plays the
// host, with conf/pier-cnitool.conflist as shipped, copied with two test-unique substitutions:
// - `name`: libcni's cache (/var/lib/cni/results) is keyed by it and host-wide, and `cnitool gc`
//   DELs every cached attachment of that name on the machine;
// - `ipam.dataDir`: Pier's store, host-wide by default.
// Pier's log goes to the test's dir through PIER_LOG_FILE (cnitool passes its environment on).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Worlds, ensureBuilt, type TestWorld } from './cni-harness.ts';
import { ipJson, ping } from './helpers.ts';
import { nftElements, storeFiles } from './reliability-common.ts';
import { CNITOOL_VERSIONS, cnitoolPath, ensureGoTools } from './cri/go-tools.ts';
import { CNI_CACHE_DIR } from './cri/containerd.ts';

ensureBuilt();
ensureGoTools();
const worlds = new Worlds();
after(() => worlds.cleanupAll());

const EXAMPLE = join(ROOT, 'conf/pier-cnitool.conflist');
const HOST_PORT = 18082;

/** libcni 1.2 brought STATUS and GC to cnitool, and the cniVersions list. */
const newerThan11 = (v: string) => {
  const [maj, min] = v.slice(1).split('.').map(Number);
  return maj > 1 || (maj === 1 && min >= 2);
};

interface Tool {
  world: TestWorld;
  name: string;
  confDir: string;
  run(args: string[], env?: Record<string, string>): { status: number | null; stdout: string; stderr: string };
}

/** A world with the example copied in (the two substitutions above) and a cnitool runner. */
function setup(version: string, edit: (conf: any) => void = () => {}): Tool {
  const world = worlds.make();
  const name = `pier-cnitool-${world.prefix}`;
  const confDir = join(world.dataDir, 'net.d');
  mkdirSync(confDir);
  const conf = JSON.parse(readFileSync(EXAMPLE, 'utf8'));
  conf.name = name;
  conf.plugins[0].ipam.dataDir = world.dataDir;
  edit(conf);
  writeFileSync(join(confDir, 'pier-cnitool.conflist'), JSON.stringify(conf, null, 2));
  world.cleanup.add(() => {
    for (const f of readdirSync(CNI_CACHE_DIR)) if (f.startsWith(`${name}-`)) rmSync(join(CNI_CACHE_DIR, f), { force: true });
  });
  const tool = cnitoolPath(version);
  return {
    world,
    name,
    confDir,
    run(args, env = {}) {
      const vars = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NETCONFPATH: confDir, CNI_PATH: join(ROOT, 'dist'), PIER_LOG_FILE: world.logFile, ...env };
      const r = spawnSync('ip', ['netns', 'exec', world.host, 'env', '-i', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), tool, ...args], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

const ok = (r: { status: number | null; stdout: string; stderr: string }, what: string) => {
  assert.equal(r.status, 0, `${what}: ${r.stdout} ${r.stderr}`);
  return r.stdout;
};

/** What is left of the network in the world: reservations, records, NAT entries, veths on the bridge. */
function left(t: Tool) {
  const files = storeFiles(t.world.dataDir, t.name);
  const links = ipJson<any[]>(t.world.host, '-d', 'link', 'show');
  const ports = links.filter((l) => l.master === 'pier-tool0').length;
  return { ips: files.ips.length, records: files.records.length, nat: nftElements(t.world, 'pier').length, ports };
}
const NOTHING = { ips: 0, records: 0, nat: 0, ports: 0 };
const cacheEntries = (t: Tool) => readdirSync(CNI_CACHE_DIR).filter((f) => f.startsWith(`${t.name}-`));

for (const version of CNITOOL_VERSIONS) {
  const modern = newerThan11(version);
  describe(`cnitool ${version} with conf/pier-cnitool.conflist`, () => {
    const t = setup(version);
    const pod = t.world.addPod();
    const podPath = t.world.netnsPath(pod);
    const capArgs = { CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: HOST_PORT, containerPort: 80, protocol: 'tcp' }] }) };
    let podIp = '';

    it(`add: wires the pod and prints a ${modern ? '1.1.0' : '1.0.0'} result`, () => {
      const result = JSON.parse(ok(t.run(['add', t.name, podPath], capArgs), 'add'));
      // libcni 1.1 keeps to cniVersion; 1.2+ takes the highest of cniVersions.
      assert.equal(result.cniVersion, modern ? '1.1.0' : '1.0.0');
      podIp = result.ips[0].address.split('/')[0];
      assert.match(podIp, /^10\.124\.0\.\d+$/);
      const eth0 = ipJson<any[]>(pod, '-4', 'addr', 'show', 'eth0');
      assert.equal(eth0[0]?.addr_info?.[0]?.local, podIp);
      assert.ok(ping(t.world.host, podIp), 'the host reaches the pod');
      const now = left(t);
      assert.deepEqual({ ips: now.ips, records: now.records, ports: now.ports }, { ips: 1, records: 1, ports: 1 });
      assert.ok(now.nat > 0, 'masquerade and hostPort entries');
      assert.equal(cacheEntries(t).length, 1, 'libcni cached the attachment');
    });

    it('check: passes', () => {
      ok(t.run(['check', t.name, podPath], capArgs), 'check');
    });

    if (modern) {
      it('status: the network is ready', () => {
        ok(t.run(['status', t.name, podPath]), 'status');
      });
    }

    it('del, and del again: everything goes, and the repeat succeeds', () => {
      ok(t.run(['del', t.name, podPath], capArgs), 'del');
      assert.deepEqual(ipJson<any[]>(pod, 'link', 'show').map((l) => l.ifname), ['lo']);
      assert.deepEqual(left(t), NOTHING);
      assert.deepEqual(cacheEntries(t), []);
      ok(t.run(['del', t.name, podPath], capArgs), 'repeated del');
      assert.deepEqual(left(t), NOTHING);
    });

    if (modern) {
      it("gc: libcni DELs the attachments in its cache; Pier refuses the GC that comes without a list", () => {
        const pods = [t.world.addPod(), t.world.addPod()];
        pods.forEach((p, i) => ok(t.run(['add', t.name, t.world.netnsPath(p)], { CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: HOST_PORT + i, containerPort: 80, protocol: 'tcp' }] }) }), `add ${i}`));
        // An attachment libcni's cache does not know (its entry lost): only a GC could release it.
        const conf = JSON.parse(readFileSync(join(t.confDir, 'pier-cnitool.conflist'), 'utf8'));
        const plugin = { ...conf.plugins[0], name: conf.name, cniVersion: '1.1.0' };
        const lost = t.world.call({ command: 'ADD', containerId: 'lost-cache-entry', netns: t.world.netnsPath(t.world.addPod()), ifname: 'eth0' }, plugin);
        assert.equal(lost.status, 0, lost.stdout);
        assert.equal(left(t).records, 3);
        // cnitool gc sends no list of live attachments: read as "none", it would release every
        // pod of the network, so Pier refuses it (code 7) and names the way out.
        const r = t.run(['gc', t.name, t.world.netnsPath(pods[0])]);
        assert.notEqual(r.status, 0, r.stdout);
        assert.match(r.stderr + r.stdout, /valid-attachments.*pier gc/s);
        assert.deepEqual(cacheEntries(t), [], "libcni's DELs went through");
        const now = left(t);
        assert.deepEqual({ ips: now.ips, records: now.records, ports: now.ports }, { ips: 1, records: 1, ports: 1 }, 'only the attachment libcni did not know is left');
        const keep = storeFiles(t.world.dataDir, t.name).records;
        assert.deepEqual(keep, ['lost-cache-entry_eth0.json']);
      });
    } else {
      it('the same file declaring cniVersion 1.1.0 (as the example once did) is refused by this cnitool', () => {
        const old = setup(version, (conf) => {
          conf.cniVersion = '1.1.0';
          delete conf.cniVersions;
        });
        const p = old.world.addPod();
        const r = old.run(['add', old.name, old.world.netnsPath(p)]);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr + r.stdout, /unsupported CNI result version "1\.1\.0"/);
        // Pier had wired the pod before libcni refused its result: a del takes it back.
        ok(old.run(['del', old.name, old.world.netnsPath(p)]), 'del');
        assert.deepEqual(left(old), NOTHING);
      });
    }
  });
}

// containerd's CRI path, driven as the kubelet drives it (RunPodSandbox with port mappings,
// CreateContainer, StartContainer, ExecSync, StopPodSandbox, RemovePodSandbox over the CRI gRPC
// API), with Pier as the node's CNI network: Debian 12's containerd 1.6 and a containerd 2.x
// built from Go modules. containerd runs inside a throwaway netns that plays the host, so Pier's
// bridge and nft table land there; every path it uses is under the test's dir (test-e2e/cri/).
//
// Network: conf/10-pier-containerd.conflist as shipped, with only `ipam.dataDir` made
// test-unique (Pier's log goes to the test dir through containerd's environment). Images: a
// static pause and busybox, packed by scripts/oci-image.mjs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { uniquePrefix } from './helpers.ts';
import { elementLabels } from './nft-state.ts';
import { ensureBuilt } from './cni-harness.ts';
import { CNI_CACHE_DIR, ContainerdHost, debianContainerd, goContainerd, type ContainerdBuild } from './cri/containerd.ts';
import { CriError, type PodSandboxConfig } from './cri/cri-client.ts';
import { ensureGoTools } from './cri/go-tools.ts';
import { missingImageDeps, testImages } from './cri/images.ts';
import { pierConflist, pierEnv, pierPlugins } from './cri/networks.ts';

ensureBuilt();
ensureGoTools();
const missing = missingImageDeps();
if (missing) throw new Error(missing);

const HOST_ADDR = '203.0.113.1';
const OUTSIDE_ADDR = '203.0.113.2';
const HOST_PORT = 18080;
const SERVER_PORT = 8080;

/** What must be the same on this machine after a run: netns, links, nft tables, /run/containerd. */
function machine() {
  const r = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout;
  return {
    netns: r('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter(Boolean).sort(),
    links: r('ip', ['-br', 'link']).split('\n').map((l) => l.split(/\s+/)[0]).filter(Boolean).sort(),
    nftTables: r('nft', ['list', 'tables']).split('\n').filter(Boolean).sort(),
    runContainerd: existsSync('/run/containerd'),
  };
}

/** Differences between two machine() snapshots in names that carry `prefix` (others' tests run too). */
function oursChanged(before: ReturnType<typeof machine>, after: ReturnType<typeof machine>, prefix: string): string[] {
  const out: string[] = [];
  for (const k of ['netns', 'links', 'nftTables'] as const) {
    const b = new Set(before[k]);
    // Pier's table in this machine's own netns would be `inet pier`: it must stay in the throwaway one.
    for (const x of after[k]) if (!b.has(x) && (x.includes(prefix) || x === 'table inet pier')) out.push(`${k} +${x}`);
  }
  if (!before.runContainerd && after.runContainerd) out.push('/run/containerd was created');
  return out;
}

// libcni 1.1 (containerd 1.6) reads the conflist's cniVersion, 1.0.0; libcni 1.3 (containerd 2.2)
// takes 1.1.0 from its cniVersions and asks STATUS for the node's NetworkReady.
const builds: Array<{ name: string; build: () => ContainerdBuild | undefined; fix: string; cniVersion: string; status: boolean }> = [
  { name: "Debian's containerd 1.6", build: debianContainerd, fix: 'run scripts/install-cri-deps.sh', cniVersion: '1.0.0', status: false },
  { name: 'containerd 2.x from Go modules', build: goContainerd, fix: 'run scripts/go-tools.sh', cniVersion: '1.1.0', status: true },
];

for (const b of builds) {
  describe(`CRI: ${b.name}`, () => {
    const build = b.build();
    const prefix = uniquePrefix();
    const images = testImages();
    let host: ContainerdHost;
    let net: ReturnType<typeof pierConflist>;
    const before0 = machine();

    before(async () => {
      if (!build) throw new Error(`${b.name} is missing: ${b.fix}`);
      host = new ContainerdHost({
        build,
        prefix,
        conflist: (dir) => (net = pierConflist(dir)).conflist,
        cniPlugins: pierPlugins(),
        env: (dir) => pierEnv(dir, 'debug'),
        images: [images.pause, images.busybox],
        sandboxImage: images.pause.ref,
        uplink: { hostAddr: HOST_ADDR, outsideAddr: OUTSIDE_ADDR },
      });
      await host.start();
    });
    after(() => host?.cleanup());

    const pods = new Map<string, { id: string; config: PodSandboxConfig; container: string }>();

    /** A pod whose one busybox container runs `command`. */
    async function runPod(name: string, command: string[], extra: Partial<PodSandboxConfig> = {}) {
      const config = host.sandboxConfig(name, extra);
      const id = await host.runPod(config);
      const container = await host.cri.createContainer(id, { metadata: { name: 'main' }, image: { image: images.busybox.ref }, command, log_path: 'main.log' }, config);
      await host.cri.startContainer(container);
      pods.set(name, { id, config, container });
      return pods.get(name)!;
    }

    const storeDir = () => join(net.dataDir, net.network);
    const records = () => {
      try {
        return readdirSync(join(storeDir(), 'attachments')).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
      } catch {
        return [];
      }
    };
    const reservations = () => {
      try {
        return readdirSync(storeDir()).filter((f) => /^[0-9a-f.:_]+$/.test(f) && /\d/.test(f));
      } catch {
        return [];
      }
    };
    const hostJson = (args: string[]) => JSON.parse(host.exec(args[0], args.slice(1)).stdout || '[]');
    const bridgePorts = () => (hostJson(['ip', '-j', 'link', 'show', 'master', 'cni0']) as any[]).map((l) => l.ifname as string);
    const natElements = () => elementLabels(host.netns, 'pier');
    /** One TCP request from the host netns (or outside): what the server said. */
    const fetchFrom = (where: 'host' | 'outside', addr: string, port = HOST_PORT) => {
      const args = ['nc', '-w', '3', addr, String(port)];
      const r = where === 'host' ? host.exec('/bin/busybox', args, '') : host.execOutside('/bin/busybox', args);
      return r.stdout.trim();
    };

    it('RunPodSandbox with a hostPort, CreateContainer, StartContainer: Pier wires the pod in the host netns', async () => {
      const a = await runPod('a', ['/bin/nc', '-ll', '-p', String(SERVER_PORT), '-e', '/bin/hello'], {
        port_mappings: [{ protocol: 'TCP', container_port: SERVER_PORT, host_port: HOST_PORT }],
      });
      await runPod('b', ['/bin/sleep', '3600']);
      assert.equal(await host.cri.containerState(a.container), 'CONTAINER_RUNNING');
      const ip = await host.cri.podIp(a.id);
      assert.match(ip, /^10\.244\.0\.\d+$/);
      const rec = JSON.parse(readFileSync(join(storeDir(), 'attachments', `${a.id}_eth0.json`), 'utf8'));
      assert.deepEqual(rec.ips.map((i: any) => i.address), [`${ip}/24`]);
      assert.deepEqual(rec.portMappings, [{ hostPort: HOST_PORT, containerPort: SERVER_PORT, protocol: 'tcp' }]);
      assert.equal(bridgePorts().length, 2);
      assert.ok(natElements().some((c) => c === `${a.id}/eth0`), 'hostPort entry of pod a');
      // The version the runtime asked for, as libcni cached Pier's result.
      const cached = JSON.parse(readFileSync(join(CNI_CACHE_DIR, `${net.network}-${a.id}-eth0`), 'utf8'));
      assert.equal(cached.result?.cniVersion, b.cniVersion);
      const statusCalls = readFileSync(net.logFile, 'utf8').split('\n').filter((l) => l.includes('"cmd":"STATUS"')).length;
      assert.equal(statusCalls > 0, b.status, `${statusCalls} STATUS calls`);
      // The pod sees its address on eth0 (ExecSync through the CRI).
      const out = await host.cri.execSync(a.container, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
      assert.equal(out.exit_code, 0, out.stderr);
      assert.match(out.stdout, new RegExp(`inet ${ip.replaceAll('.', '\\.')}/24`));
    });

    it('pod-to-pod traffic: ping and TCP from pod b to pod a', async () => {
      const a = pods.get('a')!;
      const b = pods.get('b')!;
      const ipA = await host.cri.podIp(a.id);
      const ping = await host.cri.execSync(b.container, ['ping', '-c', '1', '-W', '3', ipA]);
      assert.equal(ping.exit_code, 0, ping.stdout + ping.stderr);
      const tcp = await host.cri.execSync(b.container, ['nc', '-w', '3', ipA, String(SERVER_PORT)]);
      assert.equal(tcp.stdout.trim(), 'hello from a', tcp.stderr);
    });

    it("the hostPort answers on 127.0.0.1 and on the host's own address, from the host and from outside", () => {
      assert.equal(fetchFrom('host', '127.0.0.1'), 'hello from a');
      assert.equal(fetchFrom('host', HOST_ADDR), 'hello from a');
      assert.equal(fetchFrom('outside', HOST_ADDR), 'hello from a');
    });

    it('a second pod asking for the same hostPort fails cleanly and leaves nothing', async () => {
      const ports = bridgePorts();
      const recs = records();
      const elements = natElements().sort();
      const config = host.sandboxConfig('c', { port_mappings: [{ protocol: 'TCP', container_port: SERVER_PORT, host_port: HOST_PORT }] });
      let failed = '';
      await assert.rejects(host.runPod(config), (err: unknown) => {
        assert.ok(err instanceof CriError, String(err));
        assert.match(err.details, new RegExp(`hostPort ${HOST_PORT}/tcp is already mapped by ${pods.get('a')!.id}`), 'the error names the port and its holder');
        failed = /sandbox \\?"([0-9a-f]{64})\\?"/.exec(err.details)?.[1] ?? '';
        return true;
      });
      assert.match(failed, /^[0-9a-f]{64}$/, 'the error names the sandbox');
      assert.deepEqual((await host.cri.listPodSandbox()).map((p) => p.metadata.name).sort(), ['a', 'b']);
      assert.deepEqual(bridgePorts().sort(), ports.sort(), 'a veth was left');
      assert.deepEqual(records().sort(), recs.sort(), 'a record was left');
      assert.equal(reservations().length, 2);
      assert.deepEqual(natElements().sort(), elements, 'an nft element was left');
      assert.ok(host.knownSandboxIds().includes(failed), 'cleanup knows the failed sandbox');
      assert.deepEqual(host.cniCacheEntries([failed]), [], 'a libcni cache entry was left');
      // The first pod still answers on its port.
      assert.equal(fetchFrom('host', HOST_ADDR), 'hello from a');
    });

    it('StopPodSandbox and RemovePodSandbox leave no veth, reservation, nft element or libcni cache entry', async () => {
      for (const name of ['b', 'a']) {
        const { id } = pods.get(name)!;
        assert.ok(host.cniCacheEntries([id]).length > 0, 'libcni cached the attachment');
        await host.cri.stopPodSandbox(id);
        await host.cri.removePodSandbox(id);
        assert.equal(records().filter((r) => r.startsWith(id)).length, 0, `record of ${name}`);
        assert.deepEqual(natElements().filter((c) => c.startsWith(id)), [], `nft elements of ${name}`);
        assert.deepEqual(host.cniCacheEntries([id]), [], `libcni cache of ${name}`);
        pods.delete(name);
      }
      assert.deepEqual(bridgePorts(), []);
      assert.deepEqual(reservations(), []);
      assert.deepEqual(natElements(), []);
      assert.equal(fetchFrom('host', HOST_ADDR), '', 'the hostPort still answers');
      // containerd's second DEL (no netns, no prevResult) took the cheap path.
      assert.match(readFileSync(net.logFile, 'utf8'), /nothing recorded for this attachment/);
    });

    it('a pod whose containerd is killed and restarted is torn down cleanly afterwards', async () => {
      const d = await runPod('d', ['/bin/nc', '-ll', '-p', String(SERVER_PORT), '-e', '/bin/hello'], {
        port_mappings: [{ protocol: 'TCP', container_port: SERVER_PORT, host_port: HOST_PORT + 1 }],
      });
      assert.equal(fetchFrom('host', HOST_ADDR, HOST_PORT + 1), 'hello from d');
      const old = host.pid!;
      await host.kill();
      // The shim and the pod live on without containerd.
      assert.equal(fetchFrom('host', HOST_ADDR, HOST_PORT + 1), 'hello from d');
      await host.startDaemon();
      assert.notEqual(host.pid, old);
      await host.cri.stopPodSandbox(d.id);
      await host.cri.removePodSandbox(d.id);
      pods.delete('d');
      assert.deepEqual(bridgePorts(), []);
      assert.deepEqual(records(), []);
      assert.deepEqual(reservations(), []);
      assert.deepEqual(natElements(), []);
      assert.deepEqual(host.cniCacheEntries([d.id]), []);
      assert.deepEqual(await host.cri.listPodSandbox(), []);
    });

    it('cleanup leaves the machine as it found it', async () => {
      await host.cleanup();
      assert.deepEqual(host.leftoverPids(), [], 'processes left');
      assert.deepEqual(host.cgroupDirs(), [], 'cgroups left');
      assert.equal(existsSync(host.dir), false);
      assert.deepEqual(host.cniCacheEntries(), []);
      assert.deepEqual(oursChanged(before0, machine(), prefix), []);
    });
  });
}

// The CRI part of `npm run bench` (scripts/bench.mjs runs it with tsx and reads its JSON on
// stdout; progress goes to stderr): pod sandboxes through containerd's CRI API, as the kubelet
// makes them, with Pier's shipped conflist against the reference chain (bridge + host-local +
// portmap + firewall from /usr/lib/cni), interleaved on the same machine.
//
// Per containerd build (Debian's 1.6, and the 2.x from scripts/go-tools.sh when it is there):
// two throwaway containerds (test-e2e/cri/containerd.ts), one per network, each in its own netns
// that plays the host. Each iteration, on each side (the order alternating): RunPodSandbox with
// one hostPort, then StopPodSandbox + RemovePodSandbox (containerd runs DEL twice, the second
// with CNI_NETNS="" and no prevResult). No container is created: the figures are the network's
// part of a pod's life, plus the sandbox's fixed cost, which is the same on both sides.
//
// Usage: node --import tsx scripts/bench-cri.ts [--runs N=15] [--pier DIR-with-pier-and-pier-ipam]
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ContainerdHost, debianContainerd, goContainerd, type ContainerdBuild } from '../test-e2e/cri/containerd.ts';
import { testImages } from '../test-e2e/cri/images.ts';
import { PIER, PIER_IPAM, pierConflist, pierPlugins, referenceConflist, referencePlugins } from '../test-e2e/cri/networks.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('--runs', '15'));
const pierDir = opt('--pier', '');
const log = (msg: string) => process.stderr.write(`[bench-cri] ${msg}\n`);
const hosts: ContainerdHost[] = [];

async function cleanupAll() {
  for (const h of hosts.splice(0)) await h.cleanup();
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => {
    const pos = (s.length - 1) * p;
    const lo = Math.floor(pos);
    return s[lo] + (s[Math.ceil(pos)] - s[lo]) * (pos - lo);
  };
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, median: r(q(0.5)), p10: r(q(0.1)), p90: r(q(0.9)), min: r(s[0]), max: r(s[s.length - 1]) };
}

async function benchBuild(build: ContainerdBuild, tag: string) {
  const images = testImages();
  const common = { build, images: [images.pause, images.busybox], sandboxImage: images.pause.ref };
  const prefix = `pb${randomBytes(2).toString('hex')}${tag}`;
  const pier = pierDir ? pierPlugins(join(pierDir, 'pier'), join(pierDir, 'pier-ipam')) : pierPlugins(PIER, PIER_IPAM);
  const sides = {
    p: new ContainerdHost({ ...common, prefix: `${prefix}p`, conflist: (dir) => pierConflist(dir).conflist, cniPlugins: pier }),
    r: new ContainerdHost({ ...common, prefix: `${prefix}r`, conflist: (dir) => referenceConflist(dir), cniPlugins: referencePlugins() }),
  };
  hosts.push(sides.p, sides.r);
  await sides.p.start();
  await sides.r.start();
  const times = { p: { run: [] as number[], stopRemove: [] as number[] }, r: { run: [] as number[], stopRemove: [] as number[] } };
  let n = 0;
  const cycle = async (side: 'p' | 'r', record: boolean) => {
    const h = sides[side];
    const config = h.sandboxConfig(`bench-${n++}`, { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: 18080 }] });
    const t0 = performance.now();
    const id = await h.runPod(config);
    const t1 = performance.now();
    await h.cri.stopPodSandbox(id);
    await h.cri.removePodSandbox(id);
    const t2 = performance.now();
    if (record) {
      times[side].run.push(t1 - t0);
      times[side].stopRemove.push(t2 - t1);
    }
  };
  // Warm-up: the first sandbox of each side sets up the bridge, the nft table and the iptables chains.
  await cycle('p', false);
  await cycle('r', false);
  for (let i = 0; i < runs; i++) {
    for (const side of i % 2 ? (['r', 'p'] as const) : (['p', 'r'] as const)) await cycle(side, true);
  }
  const out = {
    containerd: build.label,
    p: { run: summary(times.p.run), stopRemove: summary(times.p.stopRemove) },
    r: { run: summary(times.r.run), stopRemove: summary(times.r.stopRemove) },
  };
  await sides.p.cleanup();
  await sides.r.cleanup();
  return out;
}

const results: Record<string, unknown> = {};
try {
  const builds = [
    ['c1', debianContainerd()],
    ['c2', goContainerd()],
  ] as const;
  for (const [tag, build] of builds) {
    if (!build) {
      log(`${tag === 'c1' ? "Debian's containerd" : 'containerd 2.x (scripts/go-tools.sh)'} is missing: skipped`);
      continue;
    }
    log(`${build.label}: ${runs} interleaved RunPodSandbox + Stop/RemovePodSandbox per side`);
    results[tag] = await benchBuild(build, tag);
  }
} catch (err) {
  results.error = err instanceof Error ? err.message : String(err);
} finally {
  await cleanupAll();
}
process.stdout.write(`${JSON.stringify(results)}\n`);

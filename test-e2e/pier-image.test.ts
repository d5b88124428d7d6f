// Pier's container image (scripts/pier-image.mjs, `npm run image`) loaded the two ways a node
// gets it without a registry, and run from there:
// - `ctr images import` into a real containerd 1.6 (the CRI harness, in a throwaway netns and
//   mount namespace), where the CRI plugin (what a kubelet asks) finds it by its name;
// - `podman load` into a private podman storage (its own --root, --runroot and config).
// Each then runs: `pier --version`, the default command (`pier agent`, which stops at once
// outside a pod), `pier agent --help`, nft under setpriv (as pier runs it), `pier install-cni`
// into a bind-mounted dir, as the DaemonSet's init container does, and `pier up` in a
// privileged container with a network namespace of its own: koffi's native module (netlink,
// setns) and nft work inside the image.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uniquePrefix } from './helpers.ts';
import { ensureBuilt, PIER } from './cni-harness.ts';
import { ContainerdHost, debianContainerd } from './cri/containerd.ts';
import { missingImageDeps, pierImage, testImages } from './cri/images.ts';
import { pierCni } from './cri/networks.ts';

ensureBuilt();
const missing = missingImageDeps();
if (missing) throw new Error(missing);
const image = pierImage();
const pierBytes = readFileSync(PIER);

/** What every runtime must show for the image, given a way to run it with args and mounts. */
type RunOptions = { bind?: [string, string]; privileged?: boolean; entrypoint?: string };

function checksFor(runIn: (name: string, args: string[], o?: RunOptions) => SpawnSyncReturns<string>, scratch: () => string) {
  test('pier --version', () => {
    const r = runIn('version', ['--version']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `pier ${image.ref.split(':').pop()}`);
  });

  test('the default command is pier agent: outside a pod it stops with its one clear error', () => {
    const r = runIn('default', []);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /"level":"error","msg":"no --kubeconfig, no KUBECONFIG, and not in a pod/);
  });

  test('pier agent --help', () => {
    const r = runIn('agent-help', ['agent', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^pier \S+ agent: /);
    assert.match(r.stdout, /--metrics-addr HOST:PORT/);
  });

  test('pier install-cni puts pier and pier-ipam, identical to dist/pier, into a mounted dir', () => {
    const dest = scratch();
    writeFileSync(join(dest, 'pier'), 'an old pier');
    const r = runIn('install-cni', ['install-cni', '--dest', '/host/opt/cni/bin'], { bind: [dest, '/host/opt/cni/bin'] });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'installed /host/opt/cni/bin/pier\ninstalled /host/opt/cni/bin/pier-ipam\n');
    assert.deepEqual(readdirSync(dest).sort(), ['pier', 'pier-ipam']);
    assert.ok(readFileSync(join(dest, 'pier')).equals(pierBytes), 'the image\'s pier is dist/pier');
    assert.equal(statSync(join(dest, 'pier')).ino, statSync(join(dest, 'pier-ipam')).ino);
    // What was installed runs on this host, in both modes.
    const v = spawnSync(join(dest, 'pier-ipam'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.0.0"}', encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.ok(JSON.parse(v.stdout).supportedVersions.includes('1.0.0'));
  });

  test('the tools pier runs are there: nft, under setpriv --pdeathsig', () => {
    const r = runIn('nft', ['--pdeathsig', 'KILL', '--', '/usr/sbin/nft', '--version'], { entrypoint: '/usr/bin/setpriv' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^nftables v\d/);
  });

  test('pier up in a privileged container with its own netns: koffi (netlink, setns) and nft work in the image', () => {
    const r = runIn('up', ['up', 'img', '-p', '18080:80'], { privileged: true });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^img: eth0 in netns \/run\/netns\/img \(created\)/);
    assert.match(r.stdout, /port 18080\/tcp on the host -> 80/);
  });
}

describe('containerd 1.6: ctr images import, then ctr run', () => {
  const build = debianContainerd();
  const prefix = uniquePrefix();
  const images = testImages();
  let host: ContainerdHost;
  let n = 0;

  before(async () => {
    if (!build) throw new Error("Debian's containerd is missing: run scripts/install-cri-deps.sh");
    host = new ContainerdHost({
      build,
      prefix,
      ...pierCni(),
      images: [images.pause, image],
      sandboxImage: images.pause.ref,
    });
    await host.start();
  });
  after(() => host?.cleanup());

  test('imported under its name, which the CRI plugin (the kubelet\'s view) resolves', async () => {
    const refs = host.ctr(['images', 'ls', '-q']).split('\n');
    assert.ok(refs.includes(image.ref), refs.join(', '));
    assert.match((await host.cri.imageId(image.ref)) ?? '', /^sha256:[0-9a-f]{64}$/);
  });

  // ctr runs inside the harness's mount namespace, where containerd and its shims see the same
  // /run (ctr's FIFOs); each container gets a new netns (ctr's default) and a cgroup under the
  // harness's, which its cleanup removes.
  checksFor(
    (name, args, o = {}) =>
      host.exec(build!.ctr, [
        '-a', host.socket, '-n', 'k8s.io', 'run', '--rm',
        '--cgroup', `${host.cgroupParent}/img-${name}`,
        ...(o.privileged ? ['--privileged'] : []),
        ...(o.bind ? ['--mount', `type=bind,src=${o.bind[0]},dst=${o.bind[1]},options=rbind:rw`] : []),
        // Arguments after the ID replace the whole command line, entrypoint included (not
        // Docker's rule, which the kubelet follows): name pier; none runs Entrypoint + Cmd.
        image.ref, `${prefix}-${name}-${++n}`, ...(args.length ? [o.entrypoint ?? '/usr/local/bin/pier', ...args] : []),
      ]),
    () => {
      const d = join(host.dir, `dest-${++n}`);
      mkdirSync(d);
      return d;
    },
  );
});

describe('podman 4.3: podman load, then podman run --network none', () => {
  const dir = mkdtempSync(join(tmpdir(), `${uniquePrefix()}-podman-img-`));
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') };
  const podman = (...args: string[]) => spawnSync('podman', ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), ...args], { env, encoding: 'utf8', timeout: 180_000 });
  let n = 0;

  before(() => {
    for (const d of ['storage', 'run', 'tmp']) mkdirSync(join(dir, d));
    const q = JSON.stringify;
    writeFileSync(env.CONTAINERS_CONF, [
      '[containers]',
      // Root here lacks CAP_SYS_RESOURCE: podman's default nofile limit (1048576) cannot be set.
      'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${q(join(dir, 'events.log'))}`,
      'runtime = "runc"',
      `tmp_dir = ${q(join(dir, 'tmp'))}`,
      '',
    ].join('\n'));
    writeFileSync(env.CONTAINERS_STORAGE_CONF, ['[storage]', 'driver = "overlay"', `graphroot = ${q(join(dir, 'storage'))}`, `runroot = ${q(join(dir, 'run'))}`, ''].join('\n'));
  });
  after(() => {
    podman('rm', '-a', '-f', '-t', '0');
    podman('rmi', '-a', '-f');
    // containers/storage mounts its overlay dir; nothing of it may outlive the test.
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m && (m === dir || m.startsWith(`${dir}/`)));
    for (const m of mounts.sort((a, b) => b.length - a.length)) spawnSync('umount', ['-l', m]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('loaded under its name, with the image config `npm run image` wrote', () => {
    const r = podman('load', '-i', image.archive);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Loaded image: ${image.ref.replaceAll('.', '\\.')}\\n`));
    const [inspect] = JSON.parse(podman('image', 'inspect', image.ref).stdout);
    assert.deepEqual(inspect.Config.Entrypoint, ['/usr/local/bin/pier']);
    assert.deepEqual(inspect.Config.Cmd, ['agent']);
    assert.equal(inspect.Architecture, 'amd64');
    assert.equal(inspect.Os, 'linux');
  });

  checksFor(
    (name, args, o = {}) =>
      podman('run', '--rm', '--network', 'none', '--name', `${name}-${++n}`,
        ...(o.privileged ? ['--privileged'] : []),
        ...(o.bind ? ['-v', `${o.bind[0]}:${o.bind[1]}`] : []),
        ...(o.entrypoint ? ['--entrypoint', o.entrypoint] : []),
        image.ref, ...args),
    () => {
      const d = join(dir, `dest-${++n}`);
      mkdirSync(d);
      return d;
    },
  );
});

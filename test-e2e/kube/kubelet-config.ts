// The test node's KubeletConfiguration and the mounts that keep it inside the test (pure: text
// from plain data; test-e2e/kube/node.ts applies them).
//
// The kubelet runs inside a throwaway netns and a private mount namespace (the CRI harness's
// holder, test-e2e/cri/containerd.ts). What it would touch on this machine, and where it goes:
// - its state, certificates, pod logs and volume plugins: under the test dir (root-dir, cert-dir,
//   podLogsDir, volumePluginDir; the flexvolume prober creates volumePluginDir);
// - /var/log/containers (hard-wired): a tmpfs on /var/log in the private mount namespace;
// - /var/lib/kubelet/device-plugins/kubelet.sock (hard-wired): a test dir bind-mounted on
//   /var/lib/kubelet there (node.ts);
// - cgroups: under cgroupRoot, the test's own cgroup (removed by the CRI harness's cleanup);
// - iptables chains (KUBE-IPTABLES-HINT, KUBE-FIREWALL, canaries): makeIPTablesUtilChains false,
//   and they would land in the throwaway netns anyway;
// - host-wide sysctls: the container manager sets vm.overcommit_memory=1, kernel.panic=10,
//   kernel.panic_on_oops=1 and the root key quotas when they differ. protectKernelDefaults makes
//   it refuse to start instead, and the private mount namespace shows it files holding the values
//   it wants (bind-mounted over /proc/sys/...), so it starts and this machine keeps its own;
// - its own oom_score_adj: 0 (root here lacks CAP_SYS_RESOURCE, it cannot go below 0).

export interface KubeletConfigSpec {
  /** unix:// path of the test containerd's socket. */
  runtimeEndpoint: string;
  nodeIp: string;
  clientCaFile: string;
  cgroupRoot: string;
  podLogsDir: string;
  volumePluginDir: string;
}

/** KubeletConfiguration (v1beta1) for a single test node on this VM; JSON, which is YAML. */
export function kubeletConfig(s: KubeletConfigSpec): Record<string, unknown> {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    containerRuntimeEndpoint: s.runtimeEndpoint,
    // No systemd on these machines; cgroup v1 in hybrid mode, which Kubernetes >= 1.35 refuses
    // by default and 1.34 accepts with this.
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    failSwapOn: false,
    cgroupRoot: s.cgroupRoot,
    cgroupsPerQOS: true,
    address: s.nodeIp,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    // The apiserver reaches the kubelet (logs, exec) with a client certificate of the cluster CA.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: s.clientCaFile } },
    authorization: { mode: 'AlwaysAllow' },
    staticPodPath: '',
    podLogsDir: s.podLogsDir,
    volumePluginDir: s.volumePluginDir,
    protectKernelDefaults: true,
    makeIPTablesUtilChains: false,
    oomScoreAdj: 0,
    // A small, shared VM: never evict the test's pods or collect its imported images (there is
    // no registry to pull them back from).
    evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'nodefs.inodesFree': '1%', 'imagefs.available': '1%', 'imagefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    podPidsLimit: 4096,
    maxPods: 30,
    clusterDomain: 'cluster.local',
    // Node status every few seconds: the test waits for conditions, and sooner is kinder to it.
    nodeStatusUpdateFrequency: '4s',
    nodeStatusReportFrequency: '10s',
    serializeImagePulls: false,
    shutdownGracePeriod: '0s',
  };
}

/** The /proc/sys values the kubelet's container manager insists on (setupKernelTunables). */
export const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

export interface NodeMounts {
  /** Host path in the private mount namespace -> test dir shown there. */
  binds: Record<string, string>;
  /** Paths that get an empty tmpfs there. */
  tmpfs: string[];
  /** Directories made there (under a tmpfs of the namespace: /run is one). */
  mkdirs: string[];
  /** /proc/sys name (vm/overcommit_memory) -> a file holding the value to show. */
  sysctlFiles: Record<string, string>;
  /** Where overlay upper/work dirs go, when a bind target's parent is missing on this machine. */
  overlayDir: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A sh script, run inside the private mount namespace, that makes the node's host paths point at
 * the test dirs. A target that does not exist on this machine is not created here: its nearest
 * existing ancestor gets an overlay (upper dir in the test dir) in the private namespace, and the
 * directory is made in the overlay. `set -e`: any failure stops it.
 */
export function nodeMountScript(m: NodeMounts): string {
  const lines = ['set -eu'];
  lines.push(`ovl() { a="$1"; while [ ! -e "$a" ]; do a="$(dirname "$a")"; done; ` +
    `n=${q(m.overlayDir)}/$(echo "$a" | tr / _); mkdir -p "$n/upper" "$n/work"; ` +
    `[ -e "$n/mounted" ] || { mount -t overlay pier-test-ovl -o "lowerdir=$a,upperdir=$n/upper,workdir=$n/work" "$a"; touch "$n/mounted"; }; mkdir -p "$1"; }`);
  for (const t of m.tmpfs) lines.push(`mount -t tmpfs -o mode=0755 pier-test-tmp ${q(t)}`);
  for (const d of m.mkdirs) lines.push(`mkdir -p ${q(d)}`);
  // Every overlay before any bind: an overlay on /var/lib would cover a bind already made on
  // /var/lib/pier (an overlay's lower dir does not show the mounts under it).
  for (const target of Object.keys(m.binds)) lines.push(`[ -d ${q(target)} ] || ovl ${q(target)}`);
  for (const [target, source] of Object.entries(m.binds)) lines.push(`mount --bind ${q(source)} ${q(target)}`);
  for (const [name, file] of Object.entries(m.sysctlFiles)) {
    if (!/^[a-z0-9_/]+$/.test(name)) throw new Error(`sysctl name ${JSON.stringify(name)}`);
    lines.push(`mount --bind ${q(file)} /proc/sys/${name}`);
  }
  return `${lines.join('\n')}\n`;
}

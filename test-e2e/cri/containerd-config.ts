// containerd configs for the CRI tests: every path (root, state, sockets, CNI dirs, the opt
// plugin) under one test dir, cgroupfs (no systemd on these machines), and
// `restrict_oom_score_adj` (root here lacks CAP_SYS_RESOURCE: runc cannot lower a container's
// oom_score_adj and RunPodSandbox fails without it). containerd 1.x reads config version 2 and
// 2.x version 3, whose CRI plugin is split into `cri.v1.images` and `cri.v1.runtime`.

export interface ContainerdPaths {
  root: string;
  state: string;
  socket: string;
  optDir: string;
  cniBinDir: string;
  cniConfDir: string;
}

export interface CriSettings {
  sandboxImage: string;
}

const q = (s: string) => JSON.stringify(s);

/** Plugins that would touch devices or host paths the tests do not own; none is needed for CRI. */
const DISABLED_V2 = [
  'io.containerd.snapshotter.v1.aufs',
  'io.containerd.snapshotter.v1.btrfs',
  'io.containerd.snapshotter.v1.devmapper',
  'io.containerd.snapshotter.v1.zfs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
];

export function configV2(p: ContainerdPaths, c: CriSettings): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = ${q(p.root)}
state = ${q(p.state)}
imports = []
disabled_plugins = ${JSON.stringify(DISABLED_V2)}

[grpc]
  address = ${q(p.socket)}
[ttrpc]
  address = ${q(`${p.socket}.ttrpc`)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(p.optDir)}

[${cri}]
  sandbox_image = ${q(c.sandboxImage)}
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [${cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [${cri}.cni]
    bin_dir = ${q(p.cniBinDir)}
    conf_dir = ${q(p.cniConfDir)}
    max_conf_num = 1
`;
}

const DISABLED_V3 = [
  ...DISABLED_V2,
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.differ.v1.erofs',
  'io.containerd.mount-handler.v1.erofs',
];

export function configV3(p: ContainerdPaths, c: CriSettings): string {
  const images = "plugins.'io.containerd.cri.v1.images'";
  const runtime = "plugins.'io.containerd.cri.v1.runtime'";
  return `version = 3
root = ${q(p.root)}
state = ${q(p.state)}
imports = []
disabled_plugins = ${JSON.stringify(DISABLED_V3)}

[grpc]
  address = ${q(p.socket)}
[ttrpc]
  address = ${q(`${p.socket}.ttrpc`)}

[plugins.'io.containerd.internal.v1.opt']
  path = ${q(p.optDir)}
# NRI listens on a host-wide socket (/var/run/nri/nri.sock): not for a throwaway containerd.
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[${images}]
  snapshotter = 'overlayfs'
  [${images}.pinned_images]
    sandbox = ${q(c.sandboxImage)}

[${runtime}]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [${runtime}.containerd]
    default_runtime_name = 'runc'
    [${runtime}.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [${runtime}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [${runtime}.cni]
    bin_dirs = [${q(p.cniBinDir)}]
    conf_dir = ${q(p.cniConfDir)}
    max_conf_num = 1
`;
}

// Starts the single-node test cluster by hand (scripts/kube-node-up.sh) and keeps it until Ctrl-C,
// which stops everything and removes its dirs. Flags:
//   --containerd debian|go   which containerd runs the node (default go: 2.x from Go modules)
//   --pier-by-hand           copy dist/pier into the node's /opt/cni/bin and run `pier agent` as a
//                            plain process (without it, install Pier with kubectl apply)
//   --image FILE             also import this OCI archive (dist/pier-image.tar) into containerd
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { uniquePrefix } from '../helpers.ts';
import { debianContainerd, goContainerd } from '../cri/containerd.ts';
import { testImages } from '../cri/images.ts';
import { PIER } from '../cri/networks.ts';
import { REPO_ROOT } from './binaries.ts';
import { startKubeNode } from './node.ts';
import { stayUpUntilSignal } from './process.ts';

const { values } = parseArgs({
  options: {
    containerd: { type: 'string', default: 'go' },
    'pier-by-hand': { type: 'boolean' },
    image: { type: 'string' },
  },
});
const build = values.containerd === 'debian' ? debianContainerd() : goContainerd();
if (!build) throw new Error(`containerd ${values.containerd} is not installed (scripts/install-cri-deps.sh, scripts/go-tools.sh)`);
const prefix = uniquePrefix();
const images = [testImages().busybox, ...(values.image ? [{ ref: '', archive: values.image }] : [])];
const node = await startKubeNode({ prefix, build, images, env: (dir) => ({ PIER_LOG_FILE: join(dir, 'pier.log'), PIER_LOG_LEVEL: 'debug' }) });
if (values['pier-by-hand']) await node.installPierByHand(PIER, join(REPO_ROOT, 'conf/pier-agent-rbac.yaml'));
process.stderr.write(
  `node ${node.name} up (${build.label}); files and logs in ${node.dir} and ${node.cp.dir}\n` +
  `node netns ${node.host.netns}; enter it with: nsenter -t ${node.host.holderPid} -m -n\n` +
  `busybox image: ${testImages().busybox.ref}\nCtrl-C stops it and removes everything\n`,
);
process.stdout.write(`export KUBECONFIG=${node.cp.hostKubeconfig}\n`);

stayUpUntilSignal(() => node.stop());

// Starts a test control plane by hand and keeps it until Ctrl-C (then stops it and removes its
// folder). Run through scripts/kube-up.sh; flags map to ControlPlaneOptions:
//   --netns NS  --bind-address ADDR  --cluster-cidr CIDR[,CIDR]  --service-cidr CIDR[,CIDR]
//   --node-cidr-mask-size-ipv4 N  --node-cidr-mask-size-ipv6 N  --no-controller-manager  --scheduler  --name NAME
import { parseArgs } from 'node:util';
import { startControlPlane } from './control-plane.ts';
import { stayUpUntilSignal } from './process.ts';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'up' },
    netns: { type: 'string' },
    'bind-address': { type: 'string' },
    'cluster-cidr': { type: 'string' },
    'service-cidr': { type: 'string' },
    'node-cidr-mask-size-ipv4': { type: 'string' },
    'node-cidr-mask-size-ipv6': { type: 'string' },
    'no-controller-manager': { type: 'boolean' },
    scheduler: { type: 'boolean' },
  },
});

const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
const cp = await startControlPlane({
  name: values.name!,
  netns: values.netns,
  bindAddress: values['bind-address'],
  clusterCidr: values['cluster-cidr'],
  serviceCidr: values['service-cidr'],
  nodeCidrMaskSize: { v4: num(values['node-cidr-mask-size-ipv4']), v6: num(values['node-cidr-mask-size-ipv6']) },
  controllerManager: values['no-controller-manager'] ? false : undefined,
  scheduler: values.scheduler,
});
process.stderr.write(
  `control plane up: apiserver ${cp.apiServerUrl} (from this host: ${cp.hostApiServerUrl}), logs in ${cp.dir}\n` +
  `admin kubeconfig for clients in the netns: ${cp.adminKubeconfig}\nCtrl-C stops it and removes ${cp.dir}\n`,
);
// stdout: the one line a script needs.
process.stdout.write(`export KUBECONFIG=${cp.hostKubeconfig}\n`);

stayUpUntilSignal(() => cp.stop());

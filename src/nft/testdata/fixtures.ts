// The network and attachments the captured fixtures were made from (see capture.ts).
import type { NftAttachment, NftNetwork } from '../model.ts';

export const FIXTURE_NET: NftNetwork = {
  name: 'podnet',
  bridge: 'cni-podnet',
  subnets: ['10.88.0.0/16', 'fd00:88::/64'],
  ipMasq: true,
  portMappings: true,
};

/** A container ID long enough that the comment has to be cut (135 chars). */
export const LONG_ID = `${'c'.repeat(64)}${'d'.repeat(71)}`;

export const FIXTURE_ATTACHMENTS: NftAttachment[] = [
  {
    key: { containerID: 'a1b2c3d4e5f6', ifname: 'eth0' },
    ips: ['10.88.0.2/16', 'fd00:88::2/64'],
    portMappings: [
      { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.1' },
    ],
  },
  {
    key: { containerID: LONG_ID, ifname: 'net1' },
    ips: ['10.88.0.3/16'],
    portMappings: [{ hostPort: 9090, containerPort: 9090, protocol: 'sctp', hostIP: '0.0.0.0' }],
  },
];

// The network `pier up` uses when no config is given: a bridge and a pod subnet picked to
// clash with nothing a typical host routes (10.123.0.0/24 is not Docker's, podman's,
// Kubernetes' or a cloud default; `pier doctor` and `pier up` check it anyway).

export const DEFAULT_NETWORK_NAME = 'pier-default';
export const DEFAULT_BRIDGE = 'pier0';
export const DEFAULT_SUBNET = '10.123.0.0/24';
export const DEFAULT_SUBNET6 = 'fd00:123::/64';
export const DEFAULT_DATA_DIR_UP = '/var/lib/pier/networks';

/** The embedded default network config (a plugin config, as a runtime would send it). */
export function defaultNetworkConf(): Record<string, unknown> {
  return {
    cniVersion: '1.1.0',
    name: DEFAULT_NETWORK_NAME,
    type: 'pier',
    bridge: DEFAULT_BRIDGE,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: true,
    hairpinMode: true,
    capabilities: { portMappings: true, ips: true },
    ipam: {
      type: 'pier-ipam',
      ranges: [[{ subnet: DEFAULT_SUBNET }], [{ subnet: DEFAULT_SUBNET6 }]],
      dataDir: DEFAULT_DATA_DIR_UP,
    },
  };
}

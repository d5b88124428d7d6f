// Node objects as the API serves them (JSON), for the agent's unit tests.
export interface NodeSpec {
  name: string;
  podCIDRs?: string[];
  internalIPs?: string[];
  externalIPs?: string[];
  created?: string;
  vtepMac?: string;
  rv?: string;
}

export function nodeObject(n: NodeSpec): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      uid: `uid-${n.name}`,
      resourceVersion: n.rv ?? '1',
      creationTimestamp: n.created ?? '2025-01-01T00:00:00Z',
      annotations: n.vtepMac ? { 'pier.dev/vtep-mac': n.vtepMac } : {},
    },
    spec: n.podCIDRs ? { podCIDR: n.podCIDRs[0], podCIDRs: n.podCIDRs } : {},
    status: {
      addresses: [
        ...(n.internalIPs ?? []).map((address) => ({ type: 'InternalIP', address })),
        ...(n.externalIPs ?? []).map((address) => ({ type: 'ExternalIP', address })),
        { type: 'Hostname', address: n.name },
      ],
    },
  };
}

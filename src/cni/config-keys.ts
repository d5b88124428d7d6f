// The field names of a network config at every depth, so that they match case-insensitively
// as Go's decoder matches them; and the config with them in their canonical spelling.
import { type KeyShape, foldKeys, keyShape } from './fold-keys.ts';
import { PREV_RESULT_SHAPE } from './prev-result.ts';
import { RUNTIME_CONFIG_SHAPE } from './runtime-config.ts';
import { ipamShape, rangeShape, routeShape } from '../ipam/config.ts';

const keysOf = (schema: { shape: object }) => Object.keys(schema.shape);
const ATTACHMENT_SHAPE = keyShape(['containerID', 'ifname']);

/**
 * Every field name Pier reads, at every depth, for matching them case-insensitively as Go's
 * decoder does (`IPAM.Ranges`, `DNS.Nameservers`, `DataDir`...). Keys of maps (`capabilities`,
 * `runtimeConfig.aliases`) are data, not field names, and keep their spelling.
 */
export const NETCONF_SHAPE: KeyShape = keyShape(
  [
    'cniVersion', 'name', 'type', 'bridge', 'isGateway', 'isDefaultGateway', 'forceAddress', 'ipMasq', 'mtu',
    'hairpinMode', 'promiscMode', 'vlan', 'vlanTrunk', 'preserveDefaultVlan', 'macspoofchk', 'enabledad',
    'disableContainerInterface', 'portIsolation', 'ipam', 'dns', 'capabilities', 'runtimeConfig', 'args',
    'prevResult', 'logFile', 'logLevel', 'dataDir', 'nftTable', 'readyFile', 'cni.dev/valid-attachments', 'cni.dev/attachments',
  ],
  {
    ipam: keyShape(keysOf(ipamShape), { ranges: keyShape(keysOf(rangeShape)), routes: keyShape(keysOf(routeShape)) }),
    dns: keyShape(['nameservers', 'domain', 'search', 'options']),
    vlanTrunk: keyShape(['id', 'minID', 'maxID']),
    runtimeConfig: RUNTIME_CONFIG_SHAPE,
    args: keyShape(['cni'], { cni: keyShape(['ips', 'mac', 'labels'], { labels: keyShape(['key', 'value']) }) }),
    prevResult: PREV_RESULT_SHAPE,
    'cni.dev/valid-attachments': ATTACHMENT_SHAPE,
    'cni.dev/attachments': ATTACHMENT_SHAPE,
  },
);

/**
 * A network config with every key Pier reads in its canonical spelling (for the CLI, which
 * reads fields of a config file itself before handing it to the plugin).
 */
export function canonicalKeys(conf: Record<string, unknown>): Record<string, unknown> {
  return foldKeys(conf, NETCONF_SHAPE) as Record<string, unknown>;
}

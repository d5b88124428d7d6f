// The CNI networks containerd runs in the CRI tests and the bench: Pier's shipped example
// (conf/10-pier-containerd.conflist) with only its host-wide paths made test-unique, and the
// reference chain it replaces (bridge + host-local + portmap + firewall from Debian's
// containernetworking-plugins).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const PIER = join(ROOT, 'dist/pier');
export const PIER_IPAM = join(ROOT, 'dist/pier-ipam');
export const REFERENCE_PLUGINS = '/usr/lib/cni';
export const PIER_CONFLIST = join(ROOT, 'conf/10-pier-containerd.conflist');

/**
 * conf/10-pier-containerd.conflist as shipped, except what is host-wide and so must be unique
 * to the test: the IPAM data dir (`ipam.dataDir`). The bridge, subnet and nft table stay: they
 * live in the throwaway netns that plays the host. Pier's log goes to `logFile` through the
 * environment (`pierEnv`), which containerd passes on to its plugins.
 */
export function pierConflist(dir: string): { conflist: any; dataDir: string; logFile: string; network: string } {
  const conflist = JSON.parse(readFileSync(PIER_CONFLIST, 'utf8'));
  const dataDir = join(dir, 'pier-data');
  conflist.plugins[0].ipam.dataDir = dataDir;
  return { conflist, dataDir, logFile: join(dir, 'pier.log'), network: conflist.name };
}

/** containerd's environment for Pier's log: in the test dir, at `level`. */
export function pierEnv(dir: string, level = 'info'): Record<string, string> {
  return { PIER_LOG_FILE: join(dir, 'pier.log'), PIER_LOG_LEVEL: level };
}

/** The plugins containerd execs for Pier's network (`loopback` runs on every pod's lo). */
export function pierPlugins(pier = PIER, pierIpam = PIER_IPAM): Record<string, string> {
  return { pier, 'pier-ipam': pierIpam, loopback: join(REFERENCE_PLUGINS, 'loopback') };
}

/**
 * The CNI part of a ContainerdHost's options with Pier as the network, as shipped: its conflist,
 * its plugins and its log in the test dir.
 */
export function pierCni(level = 'info') {
  return { conflist: (dir: string) => pierConflist(dir).conflist, cniPlugins: pierPlugins(), env: (dir: string) => pierEnv(dir, level) };
}

/** The reference chain with the same bridge settings, subnet and hostPort capability. */
export function referenceConflist(dir: string, cniVersion = '1.0.0') {
  return {
    cniVersion,
    name: 'ref-k8s',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        isDefaultGateway: true,
        ipMasq: true,
        hairpinMode: true,
        mtu: 1500,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.0.0/24' }]], dataDir: join(dir, 'host-local') },
      },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'firewall' },
    ],
  };
}

export function referencePlugins(): Record<string, string> {
  return Object.fromEntries(['bridge', 'host-local', 'portmap', 'firewall', 'loopback'].map((p) => [p, join(REFERENCE_PLUGINS, p)]));
}

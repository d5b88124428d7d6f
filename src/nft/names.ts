// Names of the nft objects Pier owns: one inet table, and per network its chains and sets.
import { createHash } from 'node:crypto';
import { DEFAULT_TABLE, TABLE_FAMILY, type AttachmentKey, type NftElement } from './model.ts';

/** nft refuses element comments longer than 128 bytes in its CLI syntax, and 1.0.6 crashes
 * (or stores garbage) when the JSON input exceeds it, so we never send more. */
export const COMMENT_MAX_BYTES = 128;

/** The table-wide host-port claim maps; no network suffix: host ports are the host's. */
export const HOSTPORT_CLAIMS4 = 'hostport_claims4';
export const HOSTPORT_CLAIMS6 = 'hostport_claims6';

/** Every object of one network in the shared table. */
export interface NetworkNames {
  family: typeof TABLE_FAMILY;
  table: string;
  /** `<sanitised name, <= 12 chars>_<8 hex of sha256(name)>`: readable, and unique even when
   * two names sanitise alike (`a.b`, `a-b`). */
  suffix: string;
  chains: { postrouting: string; prerouting: string; output: string; forward: string };
  sets: {
    podaddrs4: string;
    podaddrs6: string;
    hairpin4: string;
    hairpin6: string;
    hostports4IpAddr: string;
    hostports4IpPort: string;
    hostports4AnyAddr: string;
    hostports4AnyPort: string;
    hostports6IpAddr: string;
    hostports6IpPort: string;
    hostports6AnyAddr: string;
    hostports6AnyPort: string;
  };
  /** Table-wide, shared by every network in the table: who holds each host port (see build-network.ts). */
  claims: { claims4: string; claims6: string };
}

/** The names for network `name` in `table` (default `pier`). Longest: 41 chars, far below the
 * kernel's NFT_NAME_MAXLEN (256). */
export function networkNames(name: string, table: string = DEFAULT_TABLE): NetworkNames {
  const suffix = networkSuffix(name);
  const n = (kind: string) => `${kind}_${suffix}`;
  return {
    family: TABLE_FAMILY,
    table,
    suffix,
    chains: {
      postrouting: n('postrouting'),
      prerouting: n('prerouting'),
      output: n('output'),
      forward: n('forward'),
    },
    sets: {
      podaddrs4: n('podaddrs4'),
      podaddrs6: n('podaddrs6'),
      hairpin4: n('hairpin4'),
      hairpin6: n('hairpin6'),
      hostports4IpAddr: n('hostports4_ip_addr'),
      hostports4IpPort: n('hostports4_ip_port'),
      hostports4AnyAddr: n('hostports4_any_addr'),
      hostports4AnyPort: n('hostports4_any_port'),
      hostports6IpAddr: n('hostports6_ip_addr'),
      hostports6IpPort: n('hostports6_ip_port'),
      hostports6AnyAddr: n('hostports6_any_addr'),
      hostports6AnyPort: n('hostports6_any_port'),
    },
    claims: { claims4: HOSTPORT_CLAIMS4, claims6: HOSTPORT_CLAIMS6 },
  };
}

/** `podman-net.1` -> `podman_net_1_<hash8>`. */
export function networkSuffix(name: string): string {
  const readable = name.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 12);
  return `${readable}_${hash8(name)}`;
}

/** The set, or for a hostport the pair of maps (address, port), holding `el` in `names`'s network. */
export function setNamesOf(
  names: NetworkNames,
  el: Pick<NftElement, 'kind' | 'family'> & { hostIP?: string | null },
): string[] {
  const s = names.sets;
  const v4 = el.family === 4;
  switch (el.kind) {
    case 'podaddr':
      return [v4 ? s.podaddrs4 : s.podaddrs6];
    case 'hairpin':
      return [v4 ? s.hairpin4 : s.hairpin6];
    case 'claim':
      return [v4 ? names.claims.claims4 : names.claims.claims6];
    case 'hostport':
      if (el.hostIP) return v4 ? [s.hostports4IpAddr, s.hostports4IpPort] : [s.hostports6IpAddr, s.hostports6IpPort];
      return v4 ? [s.hostports4AnyAddr, s.hostports4AnyPort] : [s.hostports6AnyAddr, s.hostports6AnyPort];
  }
}

/** What a set name of ours says: `hostports4_any_port_cbr0_1a2b3c4d` -> hostport, 4, any, port. */
export interface SetNameInfo {
  kind: NftElement['kind'];
  family: 4 | 6;
  /** hostport maps: keyed on the host address too (`_ip`) or not (`_any`). */
  specificHost: boolean;
  /** hostport maps: which half of the DNAT target the map holds. */
  half: 'addr' | 'port' | null;
  /** The network's suffix; empty for the table-wide claim maps. */
  suffix: string;
}

export function parseSetName(name: string): SetNameInfo | null {
  const fam = (d: string) => (d === '4' ? 4 : 6) as 4 | 6;
  if (name === HOSTPORT_CLAIMS4 || name === HOSTPORT_CLAIMS6) {
    return { kind: 'claim', family: name === HOSTPORT_CLAIMS4 ? 4 : 6, specificHost: true, half: null, suffix: '' };
  }
  let m = /^(podaddrs|hairpin)([46])_(.+_[0-9a-f]{8})$/.exec(name);
  if (m) {
    return { kind: m[1] === 'podaddrs' ? 'podaddr' : 'hairpin', family: fam(m[2]), specificHost: false, half: null, suffix: m[3] };
  }
  m = /^hostports([46])_(ip|any)_(addr|port)_(.+_[0-9a-f]{8})$/.exec(name);
  if (m) {
    return { kind: 'hostport', family: fam(m[1]), specificHost: m[2] === 'ip', half: m[3] as 'addr' | 'port', suffix: m[4] };
  }
  return null;
}

/**
 * The comment that marks an attachment's elements: `containerID/ifname`. When that is longer
 * than 128 bytes the container ID is cut and a hash of the whole key keeps it unique:
 * `<prefix>~<hash8>/ifname` (`~` cannot occur in a CNI container ID, so the two never collide).
 */
export function attachmentComment(key: AttachmentKey): string {
  const full = `${key.containerID}/${key.ifname}`;
  if (Buffer.byteLength(full) <= COMMENT_MAX_BYTES) return full;
  const tail = `~${hash8(full)}/${key.ifname}`;
  let room = COMMENT_MAX_BYTES - Buffer.byteLength(tail);
  if (room < 1) return `~${hash8(full)}`;
  let prefix = '';
  for (const ch of key.containerID) {
    const b = Buffer.byteLength(ch);
    if (b > room) break;
    prefix += ch;
    room -= b;
  }
  return prefix + tail;
}

function hash8(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

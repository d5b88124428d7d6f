// What Pier keeps per attachment (containerID, ifname): the record type, its schema, key checks.
import { array, boolean, gte, int, number, object, optional, record, string, unknown } from 'zod/mini';
import '../zod-config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { NAME_PATTERN } from './config.ts';

/** An attachment is one interface of one container on one network. */
export interface AttachmentKey {
  containerID: string;
  ifname: string;
}

/** One reserved address. */
export interface ReservedIp {
  /** `ip/prefix`, the prefix being the subnet's. */
  address: string;
  gateway?: string;
  /** Index of the range set in the config it came from. */
  rangeSet: number;
}

/** Identity of a netns file, so DEL never acts on a namespace that reused the path. */
export interface NetnsIdentity {
  dev: number;
  ino: number;
}

export interface AttachmentRecord {
  containerID: string;
  ifname: string;
  network: string;
  ips: ReservedIp[];
  hostVeth?: string;
  netnsPath?: string;
  netns?: NetnsIdentity;
  /** Port mappings as the command stored them; IPAM does not look inside. */
  portMappings: unknown[];
  ipMasq: boolean;
  bridge: string;
  /** `/proc/sys/kernel/random/boot_id` at ADD: a record from an earlier boot may be stale. */
  bootId: string;
  /** ISO 8601. */
  createdAt: string;
  extra: Record<string, unknown>;
}

/** What the commands may change after the reservation. Key, network and ips stay. */
export type AttachmentPatch = Partial<
  Pick<AttachmentRecord, 'hostVeth' | 'netnsPath' | 'netns' | 'portMappings' | 'ipMasq' | 'bridge' | 'extra'>
>;

/** What the caller knows about an attachment before IPAM fills in ips, bootId and createdAt. */
export type AttachmentInit = AttachmentKey & AttachmentPatch;

export const attachmentRecordSchema = object({
  containerID: string(),
  ifname: string(),
  network: string(),
  ips: array(
    object({
      address: string(),
      gateway: optional(string()),
      rangeSet: int().check(gte(0)),
    }),
  ),
  hostVeth: optional(string()),
  netnsPath: optional(string()),
  netns: optional(object({ dev: number(), ino: number() })),
  portMappings: array(unknown()),
  ipMasq: boolean(),
  bridge: string(),
  bootId: string(),
  createdAt: string(),
  extra: record(string(), unknown()),
});

export function sameKey(a: AttachmentKey, b: AttachmentKey): boolean {
  return a.containerID === b.containerID && a.ifname === b.ifname;
}

export function keyText(k: AttachmentKey): string {
  return `${k.containerID}/${k.ifname}`;
}

/**
 * Refuses a key that could not safely become a file name (CniError 4): the container ID must
 * match the CNI regex, the ifname must be a valid Linux interface name.
 */
export function validateAttachmentKey(key: AttachmentKey): void {
  const { containerID, ifname } = key;
  if (typeof containerID !== 'string' || !NAME_PATTERN.test(containerID)) {
    throw new CniError(
      ErrorCode.InvalidEnv,
      'invalid CNI_CONTAINERID: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$',
      `CNI_CONTAINERID: ${JSON.stringify(containerID)}`,
    );
  }
  const why =
    typeof ifname !== 'string' || ifname === ''
      ? 'is empty'
      : Buffer.byteLength(ifname) > 15
        ? 'is longer than 15 bytes'
        : ifname === '.' || ifname === '..'
          ? 'is . or ..'
          : // eslint-disable-next-line no-control-regex
            /[/:\s\x00-\x1f\x7f]/.test(ifname)
            ? 'contains /, :, whitespace or a control character'
            : undefined;
  if (why) {
    throw new CniError(ErrorCode.InvalidEnv, `invalid CNI_IFNAME: it ${why}`, `CNI_IFNAME: ${JSON.stringify(ifname)}`);
  }
}

/**
 * `<containerID>_<ifname>`: file-name-safe and one-to-one. Container IDs may hold `_`, so the
 * ifname is percent-encoded outside [A-Za-z0-9.-] (`_` too): the last `_` is the separator.
 */
export function attachmentFileStem(key: AttachmentKey): string {
  const ifname = Array.from(Buffer.from(key.ifname, 'utf8'))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9.-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return `${key.containerID}_${ifname}`;
}

// The plain data the nft builders take and the parser returns: networks, attachments, elements.
import {
  type infer as Infer, array, boolean, enum as enumOf, gte, int, lte, maxLength, minLength, object, optional, regex, string,
} from 'zod/mini';
import '../zod-config.ts';
import type { IpFamily } from './addr.ts';

/** Pier's table; tests pass their own (`pier_test_<random>`) through `NftNetwork.table`. */
export const DEFAULT_TABLE = 'pier';
/** One `inet` table serves IPv4 and IPv6 (nat in the inet family needs Linux >= 5.2). */
export const TABLE_FAMILY = 'inet';

export const protocolSchema = enumOf(['tcp', 'udp', 'sctp']);
export type Protocol = Infer<typeof protocolSchema>;

/** What the NAT layer needs to know about one CNI network. */
export const nftNetworkSchema = object({
  name: string().check(minLength(1)),
  bridge: string().check(minLength(1), maxLength(15)),
  /** CIDRs of the pod ranges, IPv4 and/or IPv6. */
  subnets: array(string()).check(minLength(1)),
  ipMasq: boolean(),
  portMappings: boolean(),
  table: optional(string().check(minLength(1), maxLength(64), regex(/^[A-Za-z_][A-Za-z0-9_]*$/))),
});
export type NftNetwork = Infer<typeof nftNetworkSchema>;

export const attachmentKeySchema = object({ containerID: string().check(minLength(1)), ifname: string().check(minLength(1)) });
export type AttachmentKey = Infer<typeof attachmentKeySchema>;

const port = int().check(gte(1), lte(65535));
export const portMappingSchema = object({
  hostPort: port,
  containerPort: port,
  protocol: protocolSchema,
  /** Absent or empty: every local address of the pod IP's family. `0.0.0.0` / `::`: every local
   * address of that family only. */
  hostIP: optional(string()),
});
export type PortMapping = Infer<typeof portMappingSchema>;

/** One attachment `(containerID, ifname)` with its pod addresses (`ip/prefix`) and host ports. */
export const nftAttachmentSchema = object({
  key: attachmentKeySchema,
  ips: array(string()),
  portMappings: array(portMappingSchema),
});
export type NftAttachment = Infer<typeof nftAttachmentSchema>;

/**
 * One set or map element that belongs to an attachment; `comment` names the attachment.
 * - `podaddr`: a pod address to masquerade (`podaddrs4/6`).
 * - `hairpin`: `podIP . protocol . containerPort` reached through a hostPort (`hairpin4/6`).
 * - `hostport`: `[hostIP .] protocol . hostPort` -> `podIP` and -> `containerPort`, kept in two
 *   maps with the same key (`hostports4_ip_addr` and `hostports4_ip_port`, ...); `hostIP` null
 *   means any local address. Parsed from a table, a half whose map entry is missing is null.
 * - `claim`: the table-wide record that `[hostIP .] protocol . hostPort` is taken, `hostIP`
 *   null meaning any address, mapped to the pod IP (`hostport_claims4/6`). Built from a
 *   hostport element (see `claimsOf`), never by `attachmentElements`.
 */
export type NftElement =
  | { kind: 'podaddr'; family: IpFamily; addr: string; comment: string }
  | { kind: 'hairpin'; family: IpFamily; addr: string; protocol: Protocol; port: number; comment: string }
  | {
      kind: 'hostport';
      family: IpFamily;
      hostIP: string | null;
      protocol: Protocol;
      hostPort: number;
      podIP: string | null;
      containerPort: number | null;
      comment: string;
    }
  | { kind: 'claim'; family: IpFamily; hostIP: string | null; protocol: Protocol; hostPort: number; podIP: string; comment: string };

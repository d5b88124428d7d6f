// The plain data the nft builders take and the parser returns: networks, attachments, elements.
import { z } from 'zod';
import type { IpFamily } from './addr.ts';

/** Pier's table; tests pass their own (`pier_test_<random>`) through `NftNetwork.table`. */
export const DEFAULT_TABLE = 'pier';
/** One `inet` table serves IPv4 and IPv6 (nat in the inet family needs Linux >= 5.2). */
export const TABLE_FAMILY = 'inet';

export const protocolSchema = z.enum(['tcp', 'udp', 'sctp']);
export type Protocol = z.infer<typeof protocolSchema>;

/** What the NAT layer needs to know about one CNI network. */
export const nftNetworkSchema = z.object({
  name: z.string().min(1),
  bridge: z.string().min(1).max(15),
  /** CIDRs of the pod ranges, IPv4 and/or IPv6. */
  subnets: z.array(z.string()).min(1),
  ipMasq: z.boolean(),
  portMappings: z.boolean(),
  table: z.string().min(1).max(64).regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional(),
});
export type NftNetwork = z.infer<typeof nftNetworkSchema>;

export const attachmentKeySchema = z.object({ containerID: z.string().min(1), ifname: z.string().min(1) });
export type AttachmentKey = z.infer<typeof attachmentKeySchema>;

const port = z.number().int().min(1).max(65535);
export const portMappingSchema = z.object({
  hostPort: port,
  containerPort: port,
  protocol: protocolSchema,
  /** Absent or empty: every local address of the pod IP's family. `0.0.0.0` / `::`: every local
   * address of that family only. */
  hostIP: z.string().optional(),
});
export type PortMapping = z.infer<typeof portMappingSchema>;

/** One attachment `(containerID, ifname)` with its pod addresses (`ip/prefix`) and host ports. */
export const nftAttachmentSchema = z.object({
  key: attachmentKeySchema,
  ips: z.array(z.string()),
  portMappings: z.array(portMappingSchema),
});
export type NftAttachment = z.infer<typeof nftAttachmentSchema>;

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

// The NAT driver the CNI commands use: lists Pier's table, checks host-port conflicts, and
// applies each command's changes as one nft transaction.
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { NatAttachment, NatDriver, NatNetwork } from '../cni/commands/nat.ts';
import { writeSysctl } from '../netlink/sysctl.ts';
import { lockFile, unlockFile } from '../ipam/file-lock.ts';
import { mkdirSync } from 'node:fs';
import { buildAttachmentAdd, buildAttachmentDel, buildDocument } from './build-attachment.ts';
import { buildNetworkSetup } from './build-network.ts';
import { DEFAULT_TABLE, TABLE_FAMILY, type NftAttachment, type NftNetwork } from './model.ts';
import { assertNoHostPortConflicts, elementsByAttachment, elementsOfAttachment, parseTableListing } from './parse.ts';
import { applyTransaction, deleteUdpConntrack, listTable, nftAvailable, type RunnerOptions } from './runner.ts';
import { attachmentComment } from './names.ts';
import { familyOf } from './addr.ts';
import { describeForwardBlockers, forwardBlockers } from './forward-check.ts';

/** Host ports belong to the host, not to one network: one lock serialises check-then-add. */
const LOCK_DIR = '/run/pier';
const LOCK_FILE = `${LOCK_DIR}/nft.lock`;

export interface NftNatOptions extends RunnerOptions {
  warn?: (msg: string) => void;
}

/** The network as the nft builders take it (also what `pier resync` rebuilds). */
export function toNft(net: NatNetwork): NftNetwork {
  return {
    name: net.name,
    bridge: net.bridge,
    subnets: net.subnets,
    ipMasq: net.ipMasq,
    // Always build the hostPort rules: an ADD without ports must not drop another pod's.
    portMappings: true,
    ...(net.table && net.table !== DEFAULT_TABLE && { table: net.table }),
  };
}

export function toAtt(a: NatAttachment): NftAttachment {
  return {
    key: { containerID: a.containerID, ifname: a.ifname },
    ips: a.ips,
    portMappings: a.portMappings.map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, ...(p.hostIP && { hostIP: p.hostIP }) })),
  };
}

async function requireNft(opts: RunnerOptions, err: unknown): Promise<never> {
  const a = await nftAvailable(opts);
  if (!a.ok) throw new CniError(ErrorCode.Kernel, `nftables unusable: ${a.reason}`, a.fix, { cause: err });
  throw err;
}

/**
 * Runs fn holding the host-wide nft lock. ADD holds it from listing to applying (conflict
 * check), DEL and GC while they list and remove, and `pier resync` while it reads the store and
 * rebuilds: so a resync never re-adds the entries of an attachment a DEL just removed.
 */
export async function withNftLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
  const fd = lockFile(LOCK_FILE);
  try {
    return await fn();
  } finally {
    unlockFile(fd, LOCK_FILE);
  }
}

export function createNftNat(opts: NftNatOptions = {}): NatDriver {
  const tableOf = (net: NatNetwork) => net.table ?? DEFAULT_TABLE;
  const list = async (net: NatNetwork) => {
    const listing = await listTable(TABLE_FAMILY, tableOf(net), opts);
    return listing ? parseTableListing(listing, tableOf(net)) : undefined;
  };
  return {
    needed: (net, att) => net.ipMasq || Boolean(att?.portMappings.length),

    async add(net, att) {
      const n = toNft(net);
      const a = toAtt(att);
      await withNftLock(async () => {
        let state;
        try {
          state = await list(net);
        } catch (err) {
          await requireNft(opts, err);
        }
        if (state) assertNoHostPortConflicts(state, n, a);
        try {
          await applyTransaction(buildDocument([...buildNetworkSetup(n), ...buildAttachmentAdd(n, a)]), opts);
        } catch (err) {
          await requireNft(opts, err);
        }
      });
      if (att.portMappings.length) {
        // 127.0.0.1:hostPort from the host is routed to the bridge only with route_localnet.
        writeSysctl(['net', 'ipv4', 'conf', net.bridge, 'route_localnet'], '1');
        for (const p of att.portMappings.filter((m) => m.protocol === 'udp')) {
          for (const fam of new Set(att.ips.map((ip) => familyOf(ip.split('/')[0])))) {
            const r = await deleteUdpConntrack(p.hostPort, fam, opts);
            if (!r.ok) opts.warn?.(`stale UDP conntrack entries for port ${p.hostPort} not removed: ${r.reason}`);
          }
        }
      }
    },

    async del(net, key) {
      await withNftLock(async () => {
        let state;
        try {
          state = await list(net);
        } catch (err) {
          const a = await nftAvailable(opts);
          // No nft at all means there can be no rules of ours to remove.
          if (!a.ok) {
            opts.warn?.(`DEL: nft unusable (${a.reason}); no NAT entries removed`);
            return;
          }
          throw err;
        }
        if (!state) return;
        const els = elementsOfAttachment(state, net, key);
        if (els.length) await applyTransaction(buildDocument(buildAttachmentDel(toNft(net), els)), opts);
      });
    },

    async check(net, att) {
      const state = await list(net);
      if (!state) return [`nftables table ${tableOf(net)} is missing`];
      const have = elementsOfAttachment(state, net, att);
      const problems: string[] = [];
      if (net.ipMasq && !have.some((e) => e.kind === 'podaddr')) problems.push(`no masquerade entry for ${attachmentComment(att)}`);
      for (const p of att.portMappings) {
        if (!have.some((e) => e.kind === 'hostport' && e.hostPort === p.hostPort && e.protocol === p.protocol)) {
          problems.push(`hostPort ${p.hostPort}/${p.protocol} is not mapped`);
        }
      }
      return problems;
    },

    async gc(net, valid) {
      await withNftLock(async () => {
        const state = await list(net).catch(() => undefined);
        if (!state) return;
        const keep = new Set(valid.map((v) => attachmentComment(v)));
        const stale = [...elementsByAttachment(state, net)].filter(([comment]) => !keep.has(comment)).flatMap(([, els]) => els);
        if (stale.length) await applyTransaction(buildDocument(buildAttachmentDel(toNft(net), stale)), opts);
      });
    },

    async status(net, need) {
      const a = await nftAvailable(opts);
      if (!a.ok) {
        // Without nft there are no nftables chains to drop anything either: only NAT suffers.
        return need.nat ? `${a.reason}; ${a.fix}` : undefined;
      }
      if (!need.forwarding) return undefined;
      const blockers = await forwardBlockers(net, opts);
      return blockers.length ? describeForwardBlockers(net, blockers) : undefined;
    },
  };
}

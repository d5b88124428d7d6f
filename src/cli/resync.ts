// `pier resync`: rebuilds Pier's nftables table(s) from the attachment records after
// `nft flush ruleset` or an nftables service restart. It changes only nft: no link, address,
// route or sysctl of any attachment is touched (a flush leaves all of those as they were).
import { array } from 'zod/mini';
import { listAttachments } from '../ipam/ipam.ts';
import type { AttachmentRecord } from '../ipam/attachment.ts';
import { networkOf } from '../bridge/subnet.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { NatNetwork } from '../cni/commands/nat.ts';
import { attachmentElements, buildAttachmentAdd, buildAttachmentDel, buildDocument } from '../nft/build-attachment.ts';
import { buildNetworkSetup } from '../nft/build-network.ts';
import { DEFAULT_TABLE, TABLE_FAMILY, portMappingSchema, type NftAttachment, type NftNetwork } from '../nft/model.ts';
import { attachmentComment, networkSuffix } from '../nft/names.ts';
import { elementsByAttachment, findHostPortConflicts, parseTableListing, type ListedElement, type TableState } from '../nft/parse.ts';
import { applyTransaction, listTable, type RunnerOptions } from '../nft/runner.ts';
import { toAtt, toNft } from '../nft/nat-driver.ts';
import { withNftLock } from '../nft/nft-lock.ts';
import type { NftCommand } from '../nft/expr.ts';

export interface ResyncOptions {
  /** The store (`pier ls --data-dir`), e.g. /var/lib/pier/networks. */
  dataDir: string;
  /** Only rebuild this table; default: every table the records name. */
  table?: string;
  /**
   * Also remove elements, in the networks being rebuilt, of attachments the store does not
   * list (leftovers of a DEL that never came). Off by default: resync then only adds.
   */
  prune?: boolean;
  /** Where nft is; tests and callers with unusual layouts. */
  nft?: RunnerOptions;
  /** Told about every record skipped and why. */
  warn?: (msg: string) => void;
}

export interface ResyncReport {
  /** The tables rebuilt, one nft transaction each. */
  tables: string[];
  /** Networks whose chains, sets and maps were (re)created. */
  networks: number;
  /** Attachments whose elements were (re)added. */
  attachments: number;
  /** Set and map elements those attachments own (hostport entries counted once). */
  elements: number;
  /** Elements removed with `prune`. */
  pruned: number;
  /** `containerID/ifname on network: why`, for each record left out. */
  skipped: string[];
}

interface PlannedNetwork {
  net: NftNetwork;
  attachments: { att: NftAttachment; record: AttachmentRecord }[];
}

/**
 * Rebuilds Pier's table(s) from the records under `dataDir`: per table, ONE transaction with
 * every network's setup (table, chains, rules, sets; idempotent) and every attachment's
 * elements, so it is safe to run on an intact table too. A record says what NAT it needed:
 * ADD stores the network's subnets and table in `extra.nft`; an older record without them
 * that needed NAT (ipMasq or port mappings) is rebuilt in the default table with subnets
 * taken from its addresses. Holds the host-wide nft lock exclusively: ADD and DEL hold it shared,
 * so none of them runs between reading the records and applying (it would be undone).
 */
export async function resync(opts: ResyncOptions): Promise<ResyncReport> {
  const warn = opts.warn ?? (() => {});
  return withNftLock('exclusive', async () => {
    const report: ResyncReport = { tables: [], networks: 0, attachments: 0, elements: 0, pruned: 0, skipped: [] };
    const skip = (r: AttachmentRecord, why: string) => {
      const line = `${r.containerID}/${r.ifname} on ${r.network}: ${why}`;
      report.skipped.push(line);
      warn(`resync: skipped ${line}`);
    };
    const tables = planTables(listAttachments(opts.dataDir), opts.table, skip, warn);
    for (const [table, networks] of tables) {
      const listing = opts.prune ? await listTable(TABLE_FAMILY, table, opts.nft) : null;
      const live = listing ? parseTableListing(listing, table) : undefined;
      const cmds: NftCommand[] = [];
      // Host ports taken so far in this table, to refuse a second holder as ADD would.
      const taken: TableState = { family: TABLE_FAMILY, table, sets: [], chains: [], elements: [], skipped: 0 };
      for (const { net, attachments } of networks.values()) {
        cmds.push(...buildNetworkSetup(net));
        report.networks++;
        for (const { att, record } of attachments) {
          let els;
          try {
            els = attachmentElements(net, att);
          } catch (err) {
            skip(record, err instanceof Error ? err.message : String(err));
            continue;
          }
          const conflict = findHostPortConflicts(taken, net, att)[0];
          if (conflict) {
            skip(record, `hostPort ${conflict.hostPort}/${conflict.protocol} is also held by ${conflict.holder}`);
            continue;
          }
          const suffix = networkSuffix(net.name);
          taken.elements.push(...els.map((e) => ({ ...e, suffix }) as ListedElement));
          cmds.push(...buildAttachmentAdd(net, att, 'restore'));
          report.attachments++;
          report.elements += els.length;
        }
        if (live) {
          const keep = new Set(attachments.map((a) => attachmentComment(a.att.key)));
          const stale = [...elementsByAttachment(live, net)].filter(([c]) => !keep.has(c)).flatMap(([, els]) => els);
          // Before the adds: a stale element may hold a key a listed attachment needs.
          if (stale.length) cmds.unshift(...buildAttachmentDel(net, stale));
          report.pruned += stale.length;
        }
      }
      try {
        await applyTransaction(buildDocument(cmds), opts.nft);
      } catch (err) {
        throw new CniError(ErrorCode.Kernel, `resync of table ${TABLE_FAMILY} ${table} failed: nothing in it was changed`,
          err instanceof CniError ? `${err.message}\n${err.details}` : String(err), { cause: err });
      }
      report.tables.push(table);
    }
    return report;
  });
}

/** The records that need NAT, grouped by table and network, in the builders' terms. */
function planTables(
  records: AttachmentRecord[],
  onlyTable: string | undefined,
  skip: (r: AttachmentRecord, why: string) => void,
  warn: (msg: string) => void,
): Map<string, Map<string, PlannedNetwork>> {
  const tables = new Map<string, Map<string, PlannedNetwork>>();
  for (const r of records) {
    const ips = r.ips.length ? r.ips.map((i) => i.address) : stringArray(r.extra.ips);
    const pms = array(portMappingSchema).safeParse(r.portMappings);
    if (!pms.success) {
      skip(r, `unreadable port mappings in the record: ${pms.error.issues[0]?.message}`);
      continue;
    }
    const recorded = readNftExtra(r.extra.nft);
    // ADD records extra.nft exactly when the attachment needed NAT; older records say it through
    // ipMasq and port mappings.
    if (!recorded && !r.ipMasq && !pms.data.length) continue;
    if (!ips.length) {
      skip(r, 'the record lists no addresses');
      continue;
    }
    if (!r.bridge) {
      skip(r, 'the record names no bridge');
      continue;
    }
    if (!recorded) warn(`resync: ${r.containerID}/${r.ifname} on ${r.network}: no nft details in the record (made before resync existed); using table ${DEFAULT_TABLE} and its addresses' subnets`);
    const table = recorded?.table ?? DEFAULT_TABLE;
    if (onlyTable && table !== onlyTable) continue;
    const natNet: NatNetwork = {
      name: r.network,
      bridge: r.bridge,
      subnets: recorded?.subnets ?? ips.map(networkOf),
      ipMasq: r.ipMasq,
      portMappings: true,
      ...(table !== DEFAULT_TABLE && { table }),
    };
    const byNet = tables.get(table) ?? new Map<string, PlannedNetwork>();
    tables.set(table, byNet);
    const planned = byNet.get(r.network);
    const att = toAtt({ containerID: r.containerID, ifname: r.ifname, ips, portMappings: pms.data });
    if (!planned) {
      byNet.set(r.network, { net: toNft(natNet), attachments: [{ att, record: r }] });
      continue;
    }
    // Attachments of one network agree unless its config changed between ADDs: take the union
    // of subnets and masquerade if any attachment asked for it.
    const n = planned.net;
    n.subnets = [...new Set([...n.subnets, ...natNet.subnets])];
    n.ipMasq ||= natNet.ipMasq;
    if (n.bridge !== natNet.bridge) warn(`resync: network ${r.network} has attachments on bridges ${n.bridge} and ${natNet.bridge}; using ${n.bridge}`);
    planned.attachments.push({ att, record: r });
  }
  return tables;
}

function readNftExtra(v: unknown): { subnets: string[]; table?: string } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const subnets = stringArray(o.subnets);
  if (!subnets.length) return undefined;
  return { subnets, ...(typeof o.table === 'string' && o.table && { table: o.table }) };
}

function stringArray(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

// The NAT driver the CNI commands use: each command's changes as ONE transaction, built
// without reading the ruleset. An ADD or DEL whose network's objects exist is one nf_tables
// netlink batch sent from this process; nft runs only to set a network up (its first ADD, or
// after `nft flush ruleset`), to explain a failed ADD, for a DEL without a usable record, and
// for CHECK and GC.
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { NatAttachment, NatDriver, NatNetwork } from '../cni/commands/nat.ts';
import { readSysctl, writeSysctl } from '../netlink/sysctl.ts';
import {
  attachmentElements, buildAttachmentDel, buildDocument, claimsOf, opsToCommands, planAttachmentAdd, planAttachmentDel,
  type ElementOp,
} from './build-attachment.ts';
import { applyElementBatch } from './netlink-apply.ts';
import { SysError, errnoOf } from '../netlink/libc.ts';
import { buildNetworkSetup, setupMarkerOf } from './build-network.ts';
import { DEFAULT_TABLE, TABLE_FAMILY, type NftAttachment, type NftNetwork } from './model.ts';
import { assertNoHostPortConflicts, elementsByAttachment, elementsOfAttachment, parseTableListing, type TableState } from './parse.ts';
import { applyTransaction, deleteUdpConntrack, listTable, nftAvailable, type RunnerOptions } from './runner.ts';
import { attachmentComment } from './names.ts';
import { familyOf } from './addr.ts';
import { describeForwardBlockers, forwardBlockers } from './forward-check.ts';
import { withNftLock } from './nft-lock.ts';
import { markNftVerified, nftVerified } from './nft-verified.ts';
import type { NftCommand } from './expr.ts';

/**
 * Whether traffic bridged between pods also passes the forward hook in this netns: with
 * br_netfilter loaded (kubeadm requires it) and bridge-nf-call-iptables (or -ip6tables) on, a
 * forward chain with policy drop cuts pod-to-pod traffic on a bridge even when nothing is routed.
 */
function bridgedTrafficFiltered(): boolean {
  for (const key of ['bridge-nf-call-iptables', 'bridge-nf-call-ip6tables']) {
    try {
      if (readSysctl(['net', 'bridge', key]) === '1') return true;
    } catch {
      // No br_netfilter: bridged traffic never meets the inet hooks.
    }
  }
  return false;
}

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

/** nft's words for EEXIST: a `create`d element whose key is taken (or a map key with other data). */
const EEXIST = /File exists/;

export function createNftNat(opts: NftNatOptions = {}): NatDriver {
  const tableOf = (net: NatNetwork) => net.table ?? DEFAULT_TABLE;
  const list = async (net: NatNetwork) => {
    const listing = await listTable(TABLE_FAMILY, tableOf(net), opts);
    return listing ? parseTableListing(listing, tableOf(net)) : undefined;
  };
  /**
   * DEL without listing and without nft: removes what the record says ADD installed, in one
   * netlink batch whose map `add`s carry the record's pod IP and ports. False when that cannot
   * be done (the record does not make valid elements, the table or a set is gone, or a key was
   * taken over by a new holder: EEXIST, nothing removed): the caller then lists and goes by
   * comment. The batch is what `nft -j -f` would send for the same commands, so trying nft
   * with them after a refusal would only be refused again.
   */
  const delRecorded = (net: NatNetwork, recorded: NatAttachment): boolean => {
    try {
      const els = attachmentElements(toNft(net), toAtt(recorded));
      applyElementBatch(planAttachmentDel(toNft(net), [...els, ...claimsOf(els)]));
      return true;
    } catch {
      return false;
    }
  };
  return {
    needed: (net, att) => net.ipMasq || Boolean(att?.portMappings.length),

    async add(net, att) {
      const n = toNft(net);
      const a = toAtt(att);
      // Built before anything runs: a bad mapping (code 7) never reaches nft.
      const setup = buildNetworkSetup(n);
      const plan = planAttachmentAdd(n, a);
      const mine = opsToCommands(plan);
      await withNftLock('shared', async () => {
        let leftovers: NftCommand[] = [];
        let firstAttempt = 1;
        // Fast path: the network's table, chains and sets exist, so the elements alone, as one
        // netlink batch. It fails whole; ENOENT (first ADD of the network, a flushed ruleset) or
        // anything but EEXIST goes the nft way, with the setup, which also reports as before.
        // Taken only when this nft binary was seen working (nft-verified.ts), so that an
        // unusable nft still fails the ADD as it always did.
        try {
          if (nftVerified(opts.nft)) {
            // Touch the setup's marker set first: it exists only if this very setup is in place.
            const probe: ElementOp['entries'] = [{ el: { kind: 'podaddr', family: 4, addr: '0.0.0.0', comment: 'setup' }, half: 0 }];
            const marker = setupMarkerOf(setup);
            applyElementBatch({ ...plan, ops: [{ verb: 'add', set: marker, entries: probe }, { verb: 'delete', set: marker, entries: probe }, ...plan.ops] });
            return;
          }
        } catch (err) {
          if (err instanceof SysError && err.errno === errnoOf('EEXIST')) {
            // A taken key: as after a failed first nft attempt, list to name the holder (101),
            // else retry once with this key's leftovers removed.
            const state = await list(net).catch(() => undefined);
            if (state) assertNoHostPortConflicts(state, n, a);
            const own = state ? elementsOfAttachment(state, net, att) : [];
            leftovers = own.length ? buildAttachmentDel(n, own) : [];
            firstAttempt = 2;
          }
        }
        // A second try only after a taken key that nobody else holds: its holder left before we
        // listed, or it is a leftover of this same attachment key whose DEL never completed
        // (removed in the retry's transaction, as the add/delete/add of addresses does).
        for (let attempt = firstAttempt; ; attempt++) {
          try {
            await applyTransaction(buildDocument([...setup, ...leftovers, ...mine]), opts);
            markNftVerified(opts.nft);
            return;
          } catch (err) {
            // The transaction failed whole: nothing of this ADD is in the table. Only now list,
            // to say who holds the port.
            let state: TableState | undefined;
            try {
              state = await list(net);
            } catch {
              await requireNft(opts, err);
            }
            if (state) assertNoHostPortConflicts(state, n, a);
            if (attempt >= 2 || !EEXIST.test(err instanceof CniError ? `${err.message}\n${err.details}` : String(err))) {
              await requireNft(opts, err);
            }
            const own = state ? elementsOfAttachment(state, net, att) : [];
            leftovers = own.length ? buildAttachmentDel(n, own) : [];
          }
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

    async del(net, key, recorded) {
      await withNftLock('shared', async () => {
        if (recorded && delRecorded(net, recorded)) return;
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
      await withNftLock('shared', async () => {
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
      if (!need.forwarding && !bridgedTrafficFiltered()) return undefined;
      const blockers = await forwardBlockers(net, opts);
      return blockers.length ? describeForwardBlockers(net, blockers) : undefined;
    },
  };
}

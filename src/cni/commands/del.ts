// CNI DEL: idempotent; works with CNI_NETNS empty or gone and without prevResult. Every step
// runs even when an earlier one failed; the errors are reported together at the end.
//
// The attachment record is the last thing to go, and it goes only after the NAT entries it
// describes: a DEL whose NAT step failed keeps the record and the reservation (the hostPort
// DNAT still points at the pod's address, which must not be handed to another pod), reports
// the error, and the runtime's retry finds everything again.
//
// A DEL with nothing to remove is cheap (containerd's second DEL, which comes with CNI_NETNS=""
// and no prevResult after the first removed everything): when the store proves the attachment
// absent (lookupAttachment: store clean, no record file of the key), there are no NAT entries
// of it to find, so nft is not asked (no `nft -j list`, ~40 ms). Why no entry can outlive the
// record, at any instant a process is killed:
// - ADD writes the record (and, with Pier's IPAM, the reservations) in one locked section before
//   the first NAT entry exists (add.ts starts NAT after IPAM returns), and its undo keeps the
//   reservation when removing the NAT entries failed.
// - DEL removes the record after its NAT step succeeded (above), and last in its release
//   (addresses first): killed at any point before, it leaves the record for the next DEL.
// - repair releases only records missing addresses: an ADD killed before NAT started, or a DEL
//   killed in the release, after its NAT step.
// - GC removes the NAT entries of every attachment the runtime no longer lists before it
//   releases their records (gc.ts), so a GC killed half-way leaves records, not orphans.
// - The earlier-boot sweep releases records of a previous boot, whose nft entries went with it.
// One way past this rule remains, left to GC, which finds entries by comment whatever the
// records say: a ruleset restored from disk after a reboot brings stale entries back. (An ADD
// killed while its `nft -j -f` child ran used to be a second: the child applied the dead pod's
// entries after the runtime's DEL. The child now dies with Pier: runner.ts, diesWithPier.)
// The veth step still runs: it is cheap (no netns, no record: nothing to open), and with a
// CNI_NETNS it finds a pair through the pod, as before.
import * as nl from '../../netlink/index.ts';
import { Handles, unwirePod } from '../../bridge/wire.ts';
import { networkOf } from '../../bridge/subnet.ts';
import { type CniError, combineErrors, toCniError } from '../errors.ts';
import type { DelEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamDelFor } from './ipam-driver.ts';
import { natAttachment, natNetwork } from './nat-spec.ts';
import type { PortMapping } from '../runtime-config.ts';
import { lookupRecord, recordedPodNetns, usablePodNetns } from './records.ts';
import { kernelError } from './kernel-error.ts';
import type { AttachmentLookup } from '../../ipam/ipam.ts';
import { mark } from '../../trace.ts';

const nothingProven = (): AttachmentLookup => ({ record: undefined, absent: false });

export async function cmdDel(ctx: Ctx<DelEnv>): Promise<void> {
  const { env, conf, deps } = ctx;
  const key = { containerID: env.containerId, ifname: env.ifname };
  const errors: CniError[] = [];
  /** Runs one step; false when it failed (its error is kept for the reply). */
  const step = async (what: string, fn: () => unknown): Promise<boolean> => {
    try {
      await fn();
      mark(`del: ${what}`);
      return true;
    } catch (err) {
      const e = err instanceof nl.SysError ? kernelError(err) : toCniError(err);
      deps.log.error(`DEL: ${what} failed`, { error: e });
      errors.push(e);
      return false;
    }
  };

  // A lookup that failed proves nothing: everything below then runs as without a record.
  let found = nothingProven();
  await step('reading the attachment record', () => {
    found = lookupRecord(ctx, key);
  });
  const record = found.record;
  // Refusing the plugin's own netns must stop everything: nothing below may run against it.
  const given = usablePodNetns(env.netns, env.netnsOverride, record?.netns);
  if (env.netns && !given) deps.log.info('DEL: CNI_NETNS is gone or not the recorded one; cleaning up from the record', { netns: env.netns });
  // Without a usable CNI_NETNS (containerd's second DEL), a record that never got its host veth
  // name reaches the pair through the recorded netns, if it is still the same one.
  const netns = given ?? recordedPodNetns(record);

  // NAT first and not awaited yet: the nft process it spawns runs while this thread deletes
  // the veth (the kernel's slowest step), instead of after it. The two are independent.
  const natDone = step('removing NAT entries', async () => {
    // With a delegated IPAM the record reserves nothing itself and keeps the delegate's
    // addresses in extra.ips; the nft side refuses a network without subnets.
    const delegated = Array.isArray(record?.extra.ips) ? (record.extra.ips as unknown[]).filter((a): a is string => typeof a === 'string') : [];
    const addresses = record?.ips.length ? record.ips.map((i) => i.address) : delegated;
    const subnets = [...new Set(addresses.map(networkOf))];
    const net = natNetwork(ctx, subnets);
    // ADD called NAT exactly when its config masqueraded or it mapped ports: otherwise there
    // is nothing of this attachment's to remove, and nft need not run at all.
    if (record && !record.ipMasq && !record.portMappings.length) return;
    // No record, provably: no entry either (the header says why).
    if (found.absent) {
      deps.log.info('DEL: nothing recorded for this attachment; no NAT entries to look for');
      return;
    }
    // Addresses Pier's IPAM reserved to this attachment: no other live attachment holds them,
    // so the driver may remove what the record says without reading the ruleset.
    const recorded = record?.ips.length ? natAttachment(key, addresses, record.portMappings as PortMapping[]) : undefined;
    if (deps.nat.needed(net) || record?.portMappings.length || net.portMappings) await deps.nat.del(net, key, recorded);
  });
  await step('removing the veth pair', () => {
    const h = new Handles();
    try {
      const host = h.sock(nl.NetlinkSocket.open());
      const did = unwirePod({ bridge: record?.bridge || conf.bridge, ifname: env.ifname, hostVeth: record?.hostVeth, netnsPath: netns }, host, h);
      deps.log.info(`DEL: ${did}`);
    } finally {
      h.close();
    }
  });
  // The record outlives the NAT entries it describes (the header says why).
  if (await natDone) await step('releasing addresses', () => ipamDelFor(ctx));
  else deps.log.warn('DEL: NAT entries not removed; keeping the reservation and record for the retry');

  const failed = combineErrors('DEL', errors);
  if (failed) throw failed;
  deps.log.info('DEL done');
}

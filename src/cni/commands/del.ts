// CNI DEL: idempotent; works with CNI_NETNS empty or gone and without prevResult. Every step
// runs even when an earlier one failed; the errors are reported together at the end.
import * as nl from '../../netlink/index.ts';
import { Handles, unwirePod } from '../../bridge/wire.ts';
import { networkOf } from '../../bridge/subnet.ts';
import { type CniError, combineErrors, toCniError } from '../errors.ts';
import type { DelEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamDelFor } from './ipam-driver.ts';
import { natAttachment, natNetwork } from './nat-spec.ts';
import type { PortMapping } from '../runtime-config.ts';
import { getRecord, recordedPodNetns, usablePodNetns } from './records.ts';
import { kernelError } from './kernel-error.ts';
import { mark } from '../../trace.ts';

export async function cmdDel(ctx: Ctx<DelEnv>): Promise<void> {
  const { env, conf, deps } = ctx;
  const key = { containerID: env.containerId, ifname: env.ifname };
  const errors: CniError[] = [];
  const step = async (what: string, fn: () => unknown) => {
    try {
      await fn();
      mark(`del: ${what}`);
    } catch (err) {
      const e = err instanceof nl.SysError ? kernelError(err) : toCniError(err);
      deps.log.error(`DEL: ${what} failed`, { error: e });
      errors.push(e);
    }
  };

  let record: ReturnType<typeof getRecord>;
  await step('reading the attachment record', () => {
    record = getRecord(ctx, key);
  });
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
  await natDone;
  await step('releasing addresses', () => ipamDelFor(ctx));

  const failed = combineErrors('DEL', errors);
  if (failed) throw failed;
  deps.log.info('DEL done');
}

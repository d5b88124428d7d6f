// CNI CHECK: what prevResult describes must still exist: bridge, veth pair and master, pod
// addresses and routes, NAT entries and the IPAM reservation.
import * as nl from '../../netlink/index.ts';
import { Handles, checkPod } from '../../bridge/wire.ts';
import { networkOf } from '../../bridge/subnet.ts';
import { CniError, ErrorCode } from '../errors.ts';
import type { AttachEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamCheckFor } from './ipam-driver.ts';
import { natAttachment, natNetwork } from './nat-spec.ts';
import { checkPodNetns, getRecord } from './records.ts';
import { kernelError } from './kernel-error.ts';

export async function cmdCheck(ctx: Ctx<AttachEnv>): Promise<void> {
  const { env, conf, deps } = ctx;
  const key = { containerID: env.containerId, ifname: env.ifname };
  const prev = conf.prevResult;
  if (!prev) throw new CniError(ErrorCode.InvalidConfig, 'CHECK needs prevResult', 'prevResult is missing from the config');
  checkPodNetns(env.netns, env.netnsOverride);
  const podIfIndex = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifname && i.sandbox);
  const ips = (prev.ips ?? []).filter((i) => i.interface === undefined || i.interface === podIfIndex).map((i) => ({ address: i.address, ...(i.gateway && { gateway: i.gateway }) }));
  const hostVeth = (prev.interfaces ?? []).find((i, n) => n !== podIfIndex && !i.sandbox && i.name !== conf.bridge)?.name;

  ipamCheckFor(ctx, ips.map((i) => i.address));
  const record = getRecord(ctx, key);
  if (!record) throw new CniError(ErrorCode.CheckFailed, `no record of attachment ${key.containerID}/${key.ifname}`, `network ${conf.name}`);

  const h = new Handles();
  let problems: string[];
  try {
    const host = h.sock(nl.NetlinkSocket.open());
    const pod = h.sock(nl.openNetnsSocket(env.netns));
    problems = checkPod({ bridge: conf.bridge, ifname: env.ifname, hostVeth: hostVeth ?? record.hostVeth, ips, routes: prev.routes ?? [] }, host, pod);
  } catch (err) {
    throw kernelError(err);
  } finally {
    h.close();
  }
  const net = natNetwork(ctx, ips.map((i) => networkOf(i.address)));
  const att = natAttachment(key, ips.map((i) => i.address), (record.portMappings ?? []) as never);
  if (deps.nat.needed(net, att)) problems.push(...(await deps.nat.check(net, att)));
  if (problems.length) throw new CniError(ErrorCode.CheckFailed, `CHECK failed: ${problems[0]}`, problems.join('; '));
}

// CNI ADD: IPAM, then the bridge, veth, addresses and routes, then NAT; a failure at any step
// undoes every earlier one, IPAM included.
import * as nl from '../../netlink/index.ts';
import { parseCidr } from '../../netlink/ip-bytes.ts';
import { networkOf } from '../../bridge/subnet.ts';
import { UndoStack } from '../../bridge/undo.ts';
import { Handles, wirePod, type WireSpec } from '../../bridge/wire.ts';
import { randomHostVethName } from '../../bridge/veth.ts';
import { ipamDel } from '../../ipam/ipam.ts';
import { CniError, ErrorCode, toCniError } from '../errors.ts';
import { convertResult, type CniResult } from '../result.ts';
import type { CniRoute } from '../../base/route.ts';
import { requestedIps, requestedMac, resultDns } from '../config.ts';
import type { AttachEnv } from '../env.ts';
import type { Ctx } from './context.ts';
import { ipamAddFor, ipamDelFor } from './ipam-driver.ts';
import { natAttachment, natNetwork } from './nat-spec.ts';
import { checkPodNetns, saveOwnRecord, updateRecord } from './records.ts';
import { kernelError } from './kernel-error.ts';
import { mark } from '../../trace.ts';

export async function cmdAdd(ctx: Ctx<AttachEnv>): Promise<Record<string, unknown>> {
  const { env, conf, deps } = ctx;
  const key = { containerID: env.containerId, ifname: env.ifname };
  const requested = requestedIps(conf, ctx.cniArgs);
  const mac = requestedMac(conf, ctx.cniArgs);
  const portMappings = conf.capabilities.portMappings === false ? [] : (conf.runtimeConfig.portMappings ?? []);
  const netnsId = checkPodNetns(env.netns, env.netnsOverride);
  if (conf.vlan && conf.isGateway) {
    throw new CniError(ErrorCode.UnsupportedField, 'isGateway together with vlan is not supported yet', `vlan=${conf.vlan}`);
  }

  const h = new Handles();
  const undo = new UndoStack();
  try {
    mark('add: checks');
    const host = h.sock(nl.NetlinkSocket.open());
    mark('add: host socket')
    const pod = h.sock(nl.openNetnsSocket(env.netns));
    mark('add: pod socket');
    if (nl.getLinkByName(pod, env.ifname)) {
      throw new CniError(ErrorCode.InvalidEnv, `CNI_IFNAME ${env.ifname} already exists in ${env.netns}`, 'CNI_IFNAME');
    }

    // Everything the record needs is known before the first side effect, host veth name included,
    // so one record write covers a crash at any later point: DEL and GC can always find the veth.
    const hostVeth = randomHostVethName();
    const portNet = natNetwork(ctx);
    const needsNat = deps.nat.needed(portNet, natAttachment(key, [], portMappings));
    const init = {
      ...key,
      hostVeth,
      netnsPath: env.netns,
      netns: netnsId,
      portMappings,
      ipMasq: conf.ipMasq,
      bridge: conf.bridge,
      // `pier resync` rebuilds the NAT table from the records alone: it needs the subnets and table.
      ...(needsNat && ctx.ipam && { extra: { nft: { subnets: portNet.subnets, ...(portNet.table && { table: portNet.table }) } } }),
    };
    mark('add: pre-ipam');
    const ipam = ipamAddFor(ctx, init, requested);
    mark('add: ipam');
    // The record must outlive this attachment's NAT entries: a DEL that finds no record does
    // not look for any (del.ts). So when removing them fails, the undo keeps the record and
    // the reservation (the DNAT still points at the address) for the runtime's DEL.
    let natLeft = false;
    const unlessNatLeft = (what: string, fn: () => void) => () => {
      if (natLeft) throw new CniError(ErrorCode.Internal, `${what} kept: the NAT entries could not be removed`);
      fn();
    };
    undo.push('IPAM reservation', unlessNatLeft('IPAM reservation', () => ipamDelFor(ctx)));
    if (!ctx.ipam) {
      const subnets = ipam.ips.map((i) => networkOf(i.address));
      const nft = needsNat && { nft: { subnets, ...(portNet.table && { table: portNet.table }) } };
      saveOwnRecord(ctx, { ...init, extra: { ips: ipam.ips.map((i) => i.address), ...nft } });
      undo.push('attachment record', unlessNatLeft('attachment record', () => void ipamDel(deps.ipam, ctx.records, key)));
    }

    const routes: CniRoute[] = [...ipam.routes];
    if (conf.isDefaultGateway) {
      for (const ip of ipam.ips) {
        if (!ip.gateway) continue;
        const dst = parseCidr(ip.address).family === 4 ? '0.0.0.0/0' : '::/0';
        if (!routes.some((r) => r.dst === dst)) routes.push({ dst, gw: ip.gateway });
      }
    }
    const spec: WireSpec = {
      bridge: conf.bridge,
      netnsPath: env.netns,
      ifname: env.ifname,
      ...(conf.mtu !== undefined && { mtu: conf.mtu }),
      ...(mac !== undefined && { mac }),
      hairpin: conf.hairpinMode,
      promisc: conf.promiscMode,
      isolated: conf.portIsolation,
      enableDad: conf.enabledad,
      vlan: conf.vlan,
      ...(conf.vlanTrunk && { vlanTrunk: conf.vlanTrunk }),
      preserveDefaultVlan: conf.preserveDefaultVlan,
      isGateway: conf.isGateway,
      forceAddress: conf.forceAddress,
      ips: ipam.ips,
      routes,
      hostVeth,
    };
    const net = natNetwork(ctx, ipam.ips.map((i) => networkOf(i.address)));
    const att = natAttachment(key, ipam.ips.map((i) => i.address), portMappings);
    // The nft process starts now and runs while this thread wires the pod through netlink;
    // both must succeed, and each is undone if the other fails.
    const natDone = needsNat
      ? deps.nat.add(net, att).then(() =>
          undo.push('NAT entries', () =>
            deps.nat.del(net, key, att).catch((err: unknown) => {
              natLeft = true;
              throw err;
            }),
          ),
        )
      : Promise.resolve();
    natDone.catch(() => {}); // observed below; this only keeps Node from calling it unhandled
    let wired;
    try {
      mark('add: nat started');
      wired = wirePod(spec, host, pod, undo, h);
      mark('add: wired');
    } catch (err) {
      // Let the nft side finish (and register its undo) before the stack unwinds.
      await natDone.catch(() => {});
      throw kernelError(err);
    }
    // Only if the pre-chosen host name clashed did the veth get another one: record it.
    if (wired.hostVeth.name !== hostVeth) updateRecord(ctx, key, { hostVeth: wired.hostVeth.name });
    await natDone;
    mark('add: nat done');

    undo.commit();
    const result: CniResult = {
      interfaces: [
        { name: wired.bridge.name, ...(wired.bridge.mac && { mac: wired.bridge.mac }) },
        { name: wired.hostVeth.name, ...(wired.hostVeth.mac && { mac: wired.hostVeth.mac }) },
        { name: env.ifname, ...(wired.podLink.mac && { mac: wired.podLink.mac }), sandbox: env.netns },
      ],
      ips: ipam.ips.map((i) => ({ ...i, interface: 2 })),
      routes,
      dns: resultDns(conf, ipam.dns),
    };
    deps.log.info('ADD done', { hostVeth: wired.hostVeth.name, ips: ipam.ips.map((i) => i.address) });
    mark('add: logged');
    return convertResult(result, conf.cniVersion);
  } catch (err) {
    const failures = await undo.unwind();
    const e = toCniError(err);
    if (failures.length) deps.log.error('ADD failed and could not undo everything', { failures, error: e });
    else deps.log.warn('ADD failed; every step undone', { error: e });
    throw e;
  } finally {
    h.close();
  }
}

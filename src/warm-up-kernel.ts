// A pretend kernel for the startup snapshot's warm-up (warm-up.ts): the system calls libc.ts
// makes, answered in memory, so that the netlink half of ADD, CHECK and DEL runs (and is
// compiled into the snapshot) while the snapshot is built. It keeps a table of links and
// addresses, answers rtnetlink requests the way the kernel does (an ACK or an error per request,
// a reply for a get, a dump ended by NLMSG_DONE), and nothing else: no real socket, namespace,
// lock or process is ever touched. Approximate by design: where it answers differently from the
// kernel, the warm-up only compiles less.
import type { SystemCalls } from './netlink/libc.ts';
import { decodeMessages, encodeMessage, findAttr, nla, read, type NlMessage } from './netlink/codec.ts';
import {
  NETLINK_ROUTE, IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINK, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU,
  IFLA_ADDRESS, IFLA_BR_VLAN_FILTERING, IFLA_OPERSTATE, IFF_UP, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
  NLM_F_EXCL, NLM_F_MULTI, RTM_DELLINK, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK,
  RTM_NEWROUTE, VETH_INFO_PEER,
} from './netlink/constants.ts';
import { decodeLinkMessage, encodeLinkMessage } from './netlink/link-codec.ts';
import { CLONE_NEWNET, errnoOf } from './netlink/libc.ts';

interface FakeLink {
  index: number;
  name: string;
  kind: string;
  up: boolean;
  mtu: number;
  master?: number;
  peer?: number;
  /** A bridge's IFLA_BR_VLAN_FILTERING. */
  vlanFiltering?: boolean;
}

const IF_OPER_UP = 6;
const FIRST_FD = 1_000_000;

export function fakeKernel(): SystemCalls {
  const links = new Map<number, FakeLink>();
  const addrs: Buffer[] = [];
  const routes: Buffer[] = [];
  const queues = new Map<number, Buffer[]>();
  const protocols = new Map<number, number>();
  let nextFd = FIRST_FD;
  let nextIndex = 100;
  let errno = 0;
  const fail = (name: Parameters<typeof errnoOf>[0]) => {
    errno = errnoOf(name);
    return -1;
  };

  const byName = (name: string) => [...links.values()].find((l) => l.name === name);
  const linkReply = (l: FakeLink): Buffer =>
    encodeLinkMessage({
      info: { index: l.index, flags: l.up ? IFF_UP : 0 },
      attrs: [
        nla.str(IFLA_IFNAME, l.name),
        nla.u32(IFLA_MTU, l.mtu),
        nla.bytes(IFLA_ADDRESS, Buffer.from([2, 0, 0, 0, (l.index >> 8) & 0xff, l.index & 0xff])),
        ...(l.master !== undefined ? [nla.u32(IFLA_MASTER, l.master)] : []),
        ...(l.peer !== undefined ? [nla.u32(IFLA_LINK, l.peer)] : []),
        nla.u8(IFLA_OPERSTATE, IF_OPER_UP),
        nla.nested(IFLA_LINKINFO, [
          nla.str(IFLA_INFO_KIND, l.kind),
          ...(l.kind === 'bridge' ? [nla.nested(IFLA_INFO_DATA, [nla.u8(IFLA_BR_VLAN_FILTERING, l.vlanFiltering ? 1 : 0)])] : []),
        ]),
      ],
    });

  const newLink = (name: string, kind: string, mtu: number): FakeLink => {
    const l: FakeLink = { index: nextIndex++, name, kind, up: false, mtu };
    links.set(l.index, l);
    return l;
  };

  /** IFLA_BR_VLAN_FILTERING of a request's IFLA_LINKINFO, if it has one. */
  const vlanFilteringOf = (attrs: ReturnType<typeof decodeLinkMessage>['attrs']): boolean | undefined => {
    const info = findAttr(attrs, IFLA_LINKINFO);
    const data = info ? findAttr(read.nested(info), IFLA_INFO_DATA) : undefined;
    const attr = data ? findAttr(read.nested(data), IFLA_BR_VLAN_FILTERING) : undefined;
    return attr ? read.u8(attr) === 1 : undefined;
  };

  /** The replies to one request: [type, flags, payload] each, ACK or error last. */
  const answer = (m: NlMessage, protocol: number): Array<[number, number, Buffer]> => {
    const ack = (err = 0): [number, number, Buffer] => {
      const p = Buffer.alloc(20);
      p.writeInt32LE(-err, 0);
      encodeMessage({ ...m, payload: Buffer.alloc(0) }).copy(p, 4, 0, 16);
      return [NLMSG_ERROR, 0x100 /* NLM_F_CAPPED */, p];
    };
    const done = (): [number, number, Buffer] => [NLMSG_DONE, NLM_F_MULTI, Buffer.alloc(4)];
    const dump = (m.flags & NLM_F_DUMP) === NLM_F_DUMP;
    const wantsAck = (m.flags & NLM_F_ACK) !== 0;
    // nf_tables (a batch's messages): each one acknowledged, as a commit that went through.
    if (protocol !== NETLINK_ROUTE) return wantsAck ? [ack()] : [];
    if (m.type === RTM_GETLINK || m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
      const req = decodeLinkMessage(m.payload);
      const nameAttr = findAttr(req.attrs, IFLA_IFNAME);
      const name = nameAttr ? read.str(nameAttr) : undefined;
      const found = req.info.index > 0 ? links.get(req.info.index) : name !== undefined ? byName(name) : undefined;
      if (m.type === RTM_GETLINK) {
        if (dump) return [...[...links.values()].map((l): [number, number, Buffer] => [RTM_NEWLINK, NLM_F_MULTI, linkReply(l)]), done()];
        return found ? [[RTM_NEWLINK, 0, linkReply(found)]] : [ack(errnoOf('ENODEV'))];
      }
      if (m.type === RTM_DELLINK) {
        if (!found) return [ack(errnoOf('ENODEV'))];
        links.delete(found.index);
        if (found.peer !== undefined) links.delete(found.peer);
        return wantsAck ? [ack()] : [];
      }
      if (m.flags & NLM_F_CREATE && !found) {
        const infoAttr = findAttr(req.attrs, IFLA_LINKINFO);
        const info = infoAttr ? read.nested(infoAttr) : [];
        const kindAttr = findAttr(info, IFLA_INFO_KIND);
        const mtuAttr = findAttr(req.attrs, IFLA_MTU);
        const l = newLink(name ?? `if${nextIndex}`, kindAttr ? read.str(kindAttr) : '', mtuAttr ? read.u32(mtuAttr) : 1500);
        if (l.kind === 'bridge') l.vlanFiltering = vlanFilteringOf(req.attrs) ?? false;
        const data = findAttr(info, IFLA_INFO_DATA);
        const peerAttr = data ? findAttr(read.nested(data), VETH_INFO_PEER) : undefined;
        if (peerAttr) {
          const peerName = findAttr(decodeLinkMessage(peerAttr.data).attrs, IFLA_IFNAME);
          const p = newLink(peerName ? read.str(peerName) : `if${nextIndex}`, l.kind, l.mtu);
          p.peer = l.index;
          l.peer = p.index;
        }
      } else if (found && m.flags & NLM_F_CREATE && m.flags & NLM_F_EXCL) {
        return [ack(errnoOf('EEXIST'))];
      } else if (found) {
        const master = findAttr(req.attrs, IFLA_MASTER);
        if (master) found.master = read.u32(master) || undefined;
        if (req.info.change & IFF_UP) found.up = (req.info.flags & IFF_UP) !== 0;
        const filtering = vlanFilteringOf(req.attrs);
        if (found.kind === 'bridge' && filtering !== undefined) found.vlanFiltering = filtering;
      } else {
        return [ack(errnoOf('ENODEV'))];
      }
      return wantsAck ? [ack()] : [];
    }
    if (m.type === RTM_NEWADDR) addrs.push(m.payload);
    if (m.type === RTM_NEWROUTE) routes.push(m.payload);
    if (m.type === RTM_GETADDR && dump) return [...addrs.map((p): [number, number, Buffer] => [RTM_NEWADDR, NLM_F_MULTI, p]), done()];
    if (m.type === RTM_GETROUTE && dump) return [...routes.map((p): [number, number, Buffer] => [RTM_NEWROUTE, NLM_F_MULTI, p]), done()];
    if (dump) return [done()];
    return wantsAck ? [ack()] : [];
  };

  return {
    socket: (_domain, _type, protocol) => {
      queues.set(nextFd, []);
      protocols.set(nextFd, Number(protocol));
      return nextFd++;
    },
    bind: () => 0,
    setsockopt: () => 0,
    getsockname: (fd, addr) => {
      (addr as Buffer).writeUInt32LE(Number(fd), 4);
      return 0;
    },
    sendto: (fd, buf, len) => {
      const q = queues.get(Number(fd));
      if (!q) return fail('EBADF');
      for (const m of decodeMessages((buf as Buffer).subarray(0, Number(len)))) {
        for (const [type, flags, payload] of answer(m, protocols.get(Number(fd)) ?? NETLINK_ROUTE)) q.push(encodeMessage({ type, flags, seq: m.seq, pid: Number(fd), payload }));
      }
      return Number(len);
    },
    recv: (fd, buf) => {
      const next = queues.get(Number(fd))?.shift();
      if (!next) return fail('EAGAIN');
      next.copy(buf as Buffer);
      return next.length;
    },
    close: (fd) => (queues.delete(Number(fd)) ? 0 : fail('EBADF')),
    // Namespaces, locks and mounts: pretend success; nothing is switched, locked or mounted.
    setns: () => 0,
    flock: () => 0,
    ioctl: () => CLONE_NEWNET,
    open: () => fail('EACCES'),
    unshare: () => fail('EPERM'),
    mount: () => fail('EPERM'),
    umount2: () => fail('EPERM'),
    pipe2: () => fail('EMFILE'),
    _exit: () => {
      throw new Error('warm-up: _exit');
    },
    errno: () => errno,
  };
}

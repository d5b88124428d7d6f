// unwirePod against the warm-up's pretend kernel (no root, nothing touched on this machine): a
// veth that vanishes between being found and being deleted (the kernel tears down a deleted
// netns's veths asynchronously) is "already gone", not a failed DEL or GC.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nl from '../netlink/index.ts';
import { type SystemCalls, useFakeSystemCalls } from '../netlink/libc.ts';
import { decodeMessages } from '../netlink/codec.ts';
import { RTM_DELLINK } from '../netlink/constants.ts';
import { fakeKernel } from '../warm-up-kernel.ts';
import { Handles, unwirePod } from './wire.ts';

afterEach(() => useFakeSystemCalls(undefined));

/** The pretend kernel, where every RTM_DELLINK finds its link already deleted by someone else. */
function racingKernel(): SystemCalls {
  const k = fakeKernel();
  const other = Number(k.socket(16, 3, 0));
  return {
    ...k,
    sendto: (fd: unknown, buf: unknown, len: unknown, ...rest: unknown[]) => {
      const msgs = decodeMessages((buf as Buffer).subarray(0, Number(len)));
      if (msgs.some((m) => m.type === RTM_DELLINK)) k.sendto(other, buf, len, ...rest);
      return k.sendto(fd, buf, len, ...rest);
    },
  } as SystemCalls;
}

test('a recorded veth deleted by the kernel meanwhile counts as gone', () => {
  useFakeSystemCalls(racingKernel());
  const h = new Handles();
  try {
    const host = h.sock(nl.NetlinkSocket.open());
    nl.createBridge(host, { name: 'br0' });
    nl.createVethPair(host, { name: 'veth0abc1234', peer: { name: 'eth0' } });
    const br = nl.getLinkByName(host, 'br0')!;
    nl.setLinkMaster(host, nl.getLinkByName(host, 'veth0abc1234')!.index, br.index);
    assert.match(unwirePod({ bridge: 'br0', ifname: 'eth0', hostVeth: 'veth0abc1234' }, host, h), /already gone/);
  } finally {
    h.close();
  }
});

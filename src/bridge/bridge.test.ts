// ensureBridge against the warm-up's pretend kernel (no root, nothing touched on this machine):
// what it asks the kernel for when the bridge is new and when it already exists.
import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nl from '../netlink/index.ts';
import { useFakeSystemCalls } from '../netlink/libc.ts';
import { fakeKernel } from '../warm-up-kernel.ts';
import { ensureBridge } from './bridge.ts';

beforeEach(() => useFakeSystemCalls(fakeKernel()));
afterEach(() => useFakeSystemCalls(undefined));

test('VLAN filtering is turned on for a new bridge and for one that existed without it', () => {
  const sock = nl.NetlinkSocket.open();
  try {
    assert.equal(ensureBridge(sock, { name: 'brnew', vlanFiltering: true }).vlanFiltering, true, 'a bridge Pier creates');
    nl.createBridge(sock, { name: 'brold' });
    assert.equal(nl.getLinkByName(sock, 'brold')?.vlanFiltering, false);
    assert.equal(ensureBridge(sock, { name: 'brold' }).vlanFiltering, false, 'left alone when no VLAN is asked for');
    assert.equal(ensureBridge(sock, { name: 'brold', vlanFiltering: true }).vlanFiltering, true, 'a bridge that existed before');
  } finally {
    sock.close();
  }
});

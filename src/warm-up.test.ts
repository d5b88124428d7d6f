import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUp } from './warm-up.ts';
import * as libc from './netlink/libc.ts';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

test('the snapshot warm-up runs its steps with every system call refused, and allows them again after', async () => {
  await warmUp();
  // Nothing was made: no bridge, no data dir, no log.
  assert.notEqual(spawnSync('ip', ['link', 'show', 'pierwarm0']).status, 0);
  assert.equal(existsSync('/nonexistent'), false);
  // Had a step reached the kernel it would have thrown "system calls are blocked"; the plugin
  // runs turn that into an error reply, so check the block itself works and is lifted.
  libc.blockSystemCalls(true);
  assert.throws(() => libc.socket(libc.AF_NETLINK, libc.SOCK_RAW, 0), /system calls are blocked/);
  libc.blockSystemCalls(false);
  const fd = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW, 0);
  libc.close(fd);
});

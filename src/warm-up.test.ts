import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { warmUp } from './warm-up.ts';
import * as libc from './netlink/libc.ts';

test('the snapshot warm-up runs ADD, CHECK and DEL end to end against the pretend kernel, and touches nothing', async () => {
  const report = await warmUp();
  // The commands got as far as they would on a real kernel: if the pretend kernel falls behind
  // the wiring code, less of it is compiled into the snapshot, and this says so.
  const add = JSON.parse(report.replies.ADD);
  assert.equal(add.code, undefined, report.replies.ADD);
  assert.deepEqual(add.ips.map((i: { address: string }) => i.address), ['10.99.0.2/24', 'fd00:99::2/64']);
  assert.equal(report.replies.DEL, '');
  assert.equal(report.replies['DEL again'], '');
  assert.equal(JSON.parse(report.replies.VERSION).cniVersion, '1.0.0');
  // CHECK (given ADD's result) finds what ADD made in the pretend kernel's tables.
  assert.equal(report.replies.CHECK, '');

  // Nothing was made on this machine, and the temp directory is gone.
  assert.notEqual(spawnSync('ip', ['link', 'show', 'pierwarm0']).status, 0);
  assert.equal(existsSync('/nonexistent'), false);
  assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith('pier-warm-up-')), []);
  // And system calls reach the kernel again.
  assert.equal(libc.systemCallsFaked(), false);
  const fd = libc.socket(libc.AF_NETLINK, libc.SOCK_RAW, 0);
  libc.close(fd);
});

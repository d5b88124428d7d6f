import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRuntimeCall } from './main.ts';

const argv = (...args: string[]) => ['/opt/cni/bin/pier', '/opt/cni/bin/pier', ...args];

test('a word on the command line means the CLI, whatever CNI_* variables are set', () => {
  // The shell the cnitool instructions give users exports CNI_PATH (and often NETCONFPATH).
  assert.equal(isRuntimeCall(argv('ls'), { CNI_PATH: '/opt/cni/bin' }), false);
  assert.equal(isRuntimeCall(argv('ls', '--json'), { CNI_PATH: '/opt/cni/bin', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0' }), false);
  assert.equal(isRuntimeCall(argv('--version'), { CNI_COMMAND: 'ADD' }), false);
  assert.equal(isRuntimeCall(argv('--help'), { CNI_COMMAND: 'VERSION', CNI_ARGS: 'IgnoreUnknown=1' }), false);
});

test('no arguments: a runtime call when any CNI_* variable is set, CNI_COMMAND or not', () => {
  assert.equal(isRuntimeCall(argv(), { CNI_COMMAND: 'ADD' }), true);
  // A runtime that forgot CNI_COMMAND gets a CNI error (code 4) on stdout, not the help text.
  for (const k of ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH']) {
    assert.equal(isRuntimeCall(argv(), { [k]: '' }), true, k);
  }
  assert.equal(isRuntimeCall(argv(), { PATH: '/usr/bin', HOME: '/root' }), false);
  // `node build/pier.cjs` has the same shape: argv[1] is the script.
  assert.equal(isRuntimeCall(['/usr/bin/node', 'build/pier.cjs'], { CNI_COMMAND: 'DEL' }), true);
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeRequest, runtimeRequestNames } from './testdata/runtime-requests.ts';
import { CniError } from './errors.ts';
import { checkInterfaceName, parseCniEnv } from './env.ts';


const ADD = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/cni-1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin:/usr/libexec/cni',
};

function envError(env: Record<string, string | undefined>): CniError {
  try {
    parseCniEnv(env);
  } catch (err) {
    assert.ok(err instanceof CniError);
    return err;
  }
  assert.fail('expected parseCniEnv to throw');
}

describe('parseCniEnv', () => {
  it('parses ADD into typed fields, splitting CNI_PATH', () => {
    assert.deepEqual(parseCniEnv({ ...ADD, CNI_ARGS: 'IgnoreUnknown=1' }), {
      command: 'ADD',
      containerId: 'abc123',
      netns: '/var/run/netns/cni-1',
      ifname: 'eth0',
      path: ['/opt/cni/bin', '/usr/libexec/cni'],
      args: 'IgnoreUnknown=1',
      netnsOverride: false,
    });
  });

  it('drops empty CNI_PATH entries and defaults missing CNI_PATH/CNI_ARGS', () => {
    const env = parseCniEnv({ ...ADD, CNI_PATH: ':/a::/b:' });
    assert.deepEqual(env.path, ['/a', '/b']);
    const bare = parseCniEnv({ ...ADD, CNI_PATH: undefined });
    assert.deepEqual(bare.path, []);
    assert.equal(bare.args, '');
  });

  it('exposes CNI_NETNS_OVERRIDE only when it is exactly 1', () => {
    assert.equal(parseCniEnv({ ...ADD, CNI_NETNS_OVERRIDE: '1' }).netnsOverride, true);
    assert.equal(parseCniEnv({ ...ADD, CNI_NETNS_OVERRIDE: 'true' }).netnsOverride, false);
  });

  it('refuses an unknown or missing CNI_COMMAND with code 4', () => {
    const unknown = envError({ ...ADD, CNI_COMMAND: 'add' });
    assert.equal(unknown.code, 4);
    assert.match(unknown.message, /CNI_COMMAND "add"/);
    const missing = envError({ ...ADD, CNI_COMMAND: undefined });
    assert.equal(missing.code, 4);
    assert.match(missing.message, /CNI_COMMAND/);
  });

  it('names every missing attachment variable at once', () => {
    const err = envError({ CNI_COMMAND: 'ADD' });
    assert.equal(err.code, 4);
    assert.equal(err.message, 'invalid env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME]');
    assert.equal(err.details, 'CNI_CONTAINERID is missing; CNI_NETNS is missing; CNI_IFNAME is missing');
  });

  it('treats empty values as missing', () => {
    const err = envError({ CNI_COMMAND: 'CHECK', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '' });
    assert.equal(err.message, 'invalid env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME]');
  });

  it('names invalid and missing variables together', () => {
    const err = envError({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-bad', CNI_IFNAME: 'a/b' });
    assert.equal(err.message, 'invalid env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME]');
    assert.match(err.details, /CNI_CONTAINERID "-bad" must match/);
    assert.match(err.details, /CNI_IFNAME "a\/b" contains \/ or : or whitespace/);
  });

  it('applies the container-ID pattern', () => {
    for (const ok of ['a', '0abc', 'a_b.c-d', 'f48a4122cfbe73b3']) assert.equal(parseCniEnv({ ...ADD, CNI_CONTAINERID: ok }).command, 'ADD');
    for (const bad of ['_a', '.a', '-a', 'a b', 'a/b', 'a:b', 'ä']) {
      const err = envError({ ...ADD, CNI_CONTAINERID: bad });
      assert.equal(err.message, 'invalid env variables [CNI_CONTAINERID]', bad);
    }
  });

  it('applies every interface-name rule', () => {
    assert.equal(checkInterfaceName('eth0'), undefined);
    assert.equal(checkInterfaceName('a'.repeat(15)), undefined);
    assert.match(checkInterfaceName('a'.repeat(16))!, /longer than 15/);
    // 15 characters but 16 bytes: the kernel counts bytes.
    assert.match(checkInterfaceName('é' + 'a'.repeat(14))!, /longer than 15/);
    assert.equal(checkInterfaceName('.'), 'is . or ..');
    assert.equal(checkInterfaceName('..'), 'is . or ..');
    assert.equal(checkInterfaceName('...'), undefined);
    for (const bad of ['a/b', 'a:b', 'a b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0085b']) {
      assert.match(checkInterfaceName(bad)!, /whitespace/, JSON.stringify(bad));
      assert.equal(envError({ ...ADD, CNI_IFNAME: bad }).message, 'invalid env variables [CNI_IFNAME]');
    }
  });

  it('lets DEL run without CNI_NETNS but still requires the container ID and ifname', () => {
    const del = parseCniEnv({ ...ADD, CNI_COMMAND: 'DEL', CNI_NETNS: '' });
    assert.equal(del.command, 'DEL');
    assert.equal(del.command === 'DEL' && del.netns, undefined);
    const err = envError({ CNI_COMMAND: 'DEL', CNI_NETNS: '' });
    assert.equal(err.message, 'invalid env variables [CNI_CONTAINERID,CNI_IFNAME]');
  });

  it('requires no attachment variables for VERSION, STATUS and GC, and ignores junk in them', () => {
    for (const command of ['VERSION', 'STATUS', 'GC']) {
      const env = parseCniEnv({ CNI_COMMAND: command, CNI_CONTAINERID: '', CNI_IFNAME: 'dummy', CNI_NETNS: 'dummy', CNI_PATH: '/opt/cni/bin' });
      assert.deepEqual(env, { command, path: ['/opt/cni/bin'], args: '', netnsOverride: false });
    }
  });

  it('accepts the environment of every captured runtime call', () => {
    const files = runtimeRequestNames();
    assert.ok(files.length >= 30);
    for (const file of files) {
      const { env } = runtimeRequest(file);
      const parsed = parseCniEnv(env);
      assert.equal(parsed.command, env.CNI_COMMAND, file);
      if (parsed.command === 'DEL') assert.equal(parsed.netns, env.CNI_NETNS || undefined, file);
    }
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from './errors.ts';
import { parseCniArgs } from './cni-args.ts';

function argsError(text: string): CniError {
  try {
    parseCniArgs(text);
  } catch (err) {
    assert.ok(err instanceof CniError);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(text)} to be refused`);
}

describe('parseCniArgs', () => {
  it('returns no args for an empty string', () => {
    assert.deepEqual(parseCniArgs(''), { ips: [], ignoreUnknown: false, unknown: {} });
  });

  it('parses containerd\'s Kubernetes args, IgnoreUnknown first or last', () => {
    const id = 'f48a4122cfbe73b3b81779a4ea699762dfcc9b2321a5d3f9f4d8fd276b20783a';
    const expected = {
      ips: [],
      k8sPodNamespace: 'default',
      k8sPodName: 'rc-pod',
      k8sPodInfraContainerId: id,
      k8sPodUid: 'rc-pod-uid-1',
      ignoreUnknown: true,
      unknown: {},
    };
    const pairs = `K8S_POD_NAMESPACE=default;K8S_POD_NAME=rc-pod;K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_UID=rc-pod-uid-1`;
    assert.deepEqual(parseCniArgs(`IgnoreUnknown=1;${pairs}`), expected);
    assert.deepEqual(parseCniArgs(`${pairs};IgnoreUnknown=1`), expected);
  });

  it('parses podman\'s static IP and MAC', () => {
    const args = parseCniArgs('IgnoreUnknown=1;K8S_POD_NAME=rc-cap;MAC=02:42:0a:4d:00:32;IP=10.77.0.50');
    assert.deepEqual(args.ips, ['10.77.0.50']);
    assert.equal(args.mac, '02:42:0a:4d:00:32');
    assert.equal(args.k8sPodName, 'rc-cap');
  });

  it('splits IP on commas, trims entries, accepts CIDRs and treats IP= as none', () => {
    assert.deepEqual(parseCniArgs('IP=10.0.0.5, fd00::5/64').ips, ['10.0.0.5', 'fd00::5/64']);
    assert.deepEqual(parseCniArgs('IP=').ips, []);
    const bad = argsError('IP=10.0.0.5,nope');
    assert.equal(bad.code, 4);
    assert.match(bad.details, /"nope"/);
  });

  it('refuses a pair without = or with a value containing =, naming CNI_ARGS (code 4)', () => {
    for (const text of ['FOO', 'K8S_POD_NAME=a=b', 'K8S_POD_NAME=a;', ';K8S_POD_NAME=a', 'IgnoreUnknown=1;;K8S_POD_NAME=a']) {
      const err = argsError(text);
      assert.equal(err.code, 4, text);
      assert.match(err.message, /^CNI_ARGS: invalid pair/, text);
    }
  });

  it('refuses unknown keys with code 2 naming key and value, whatever their case', () => {
    const err = argsError('K8S_POD_NAME=a;FOO=bar;k8s_pod_uid=x');
    assert.equal(err.code, 2);
    assert.equal(err.message, 'CNI_ARGS: unknown args [FOO,k8s_pod_uid]');
    assert.equal(err.details, 'FOO=bar;k8s_pod_uid=x');
  });

  it('keeps unknown keys aside when IgnoreUnknown is 1 or true in any case', () => {
    for (const flag of ['1', 'true', 'TRUE', 'True']) {
      const args = parseCniArgs(`FOO=bar;IgnoreUnknown=${flag};__proto__=x`);
      assert.equal(args.ignoreUnknown, true, flag);
      assert.deepEqual(Object.entries(args.unknown), [['FOO', 'bar'], ['__proto__', 'x']]);
      assert.equal(Object.getPrototypeOf(args.unknown), Object.prototype);
    }
  });

  it('does not ignore unknown keys when IgnoreUnknown is 0 or false', () => {
    for (const flag of ['0', 'false', 'FALSE']) assert.equal(argsError(`IgnoreUnknown=${flag};FOO=bar`).code, 2, flag);
  });

  it('refuses an IgnoreUnknown value Go cannot parse as a bool', () => {
    for (const flag of ['yes', '', '2']) {
      const err = argsError(`IgnoreUnknown=${flag}`);
      assert.equal(err.code, 4, flag);
      assert.match(err.message, /IgnoreUnknown/);
    }
  });

  it('matches keys case-sensitively and lets a later pair win', () => {
    assert.equal(parseCniArgs('K8S_POD_NAME=a;K8S_POD_NAME=b').k8sPodName, 'b');
    assert.equal(argsError('ignoreunknown=1;FOO=x').code, 2);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeRequest } from './testdata/runtime-requests.ts';
import { CniError } from './errors.ts';
import {
  LATEST_VERSION,
  SUPPORTED_VERSIONS,
  assertCommandAllowed,
  assertSupportedVersion,
  compareVersions,
  versionResult,
} from './versions.ts';

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, `expected a CniError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected a throw');
}

describe('versions', () => {
  it('lists the seven spec versions in order, latest last', () => {
    assert.deepEqual([...SUPPORTED_VERSIONS], ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    assert.equal(LATEST_VERSION, '1.1.0');
    const sorted = [...SUPPORTED_VERSIONS].sort(compareVersions);
    assert.deepEqual(sorted, [...SUPPORTED_VERSIONS]);
  });

  it('compares numerically, not as text', () => {
    assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
    assert.ok(compareVersions('0.3.0', '0.3.1') < 0);
    assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
    assert.equal(codeOf(() => compareVersions('1.0', '1.0.0')), 1);
  });

  it('VERSION echoes a supported version and answers an unknown or missing one with the latest', () => {
    assert.deepEqual(versionResult('1.0.0'), {
      cniVersion: '1.0.0',
      supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    });
    assert.equal(versionResult().cniVersion, '1.1.0');
    assert.equal(versionResult('9.9.9').cniVersion, '1.1.0');
    assert.equal(JSON.stringify(Object.keys(versionResult('0.4.0'))), '["cniVersion","supportedVersions"]');
  });

  it('refuses an unknown config version with code 1, naming what is supported', () => {
    assert.equal(assertSupportedVersion('0.4.0'), '0.4.0');
    assert.throws(() => assertSupportedVersion('0.5.0'), (err: CniError) => {
      assert.equal(err.code, 1);
      assert.match(err.details, /"0\.5\.0"/);
      assert.match(err.details, /1\.1\.0/);
      return true;
    });
    assert.equal(codeOf(() => assertSupportedVersion(undefined)), 1);
  });

  it('gates CHECK at 0.4.0 and GC/STATUS at 1.1.0 with code 1', () => {
    for (const v of ['0.1.0', '0.2.0', '0.3.0', '0.3.1']) assert.equal(codeOf(() => assertCommandAllowed('CHECK', v)), 1);
    for (const v of ['0.4.0', '1.0.0', '1.1.0']) assertCommandAllowed('CHECK', v);
    for (const cmd of ['GC', 'STATUS']) {
      for (const v of SUPPORTED_VERSIONS.filter((x) => x !== '1.1.0')) {
        assert.equal(codeOf(() => assertCommandAllowed(cmd, v)), 1, `${cmd} ${v}`);
      }
      assertCommandAllowed(cmd, '1.1.0');
    }
    for (const v of SUPPORTED_VERSIONS) {
      assertCommandAllowed('ADD', v);
      assertCommandAllowed('DEL', v);
    }
  });

  it('answers podman\'s VERSION calls as the reference plugins did, listing 1.1.0 as well', () => {
    for (const name of ['podman-bridge-VERSION', 'podman-portmap-VERSION', 'podman-firewall-VERSION', 'podman-tuning-VERSION']) {
      const { stdin, stdout } = runtimeRequest(name);
      const ours = versionResult(stdin.cniVersion);
      assert.equal(ours.cniVersion, stdout.cniVersion, name);
      for (const v of stdout.supportedVersions) assert.ok(ours.supportedVersions.includes(v), `${name} ${v}`);
    }
  });
});

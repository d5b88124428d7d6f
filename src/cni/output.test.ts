import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from './errors.ts';
import { serialiseJson, stripStack, writeError, writeResult } from './output.ts';
import { convertResult } from './result.ts';
import { versionResult } from './versions.ts';

function sink() {
  const writes: string[] = [];
  return { writes, write: (chunk: string) => writes.push(chunk) };
}

describe('writeResult', () => {
  it('prints a result in one write, indented like Go\'s MarshalIndent', () => {
    const out = sink();
    writeResult(out, convertResult({ ips: [{ address: '10.78.0.4/24', gateway: '10.78.0.1' }], routes: [{ dst: '0.0.0.0/0' }] }, '0.4.0'));
    assert.equal(out.writes.length, 1);
    assert.equal(
      out.writes[0],
      [
        '{',
        '    "cniVersion": "0.4.0",',
        '    "ips": [',
        '        {',
        '            "version": "4",',
        '            "address": "10.78.0.4/24",',
        '            "gateway": "10.78.0.1"',
        '        }',
        '    ],',
        '    "routes": [',
        '        {',
        '            "dst": "0.0.0.0/0"',
        '        }',
        '    ],',
        '    "dns": {}',
        '}',
      ].join('\n'),
    );
  });

  it('prints the VERSION reply', () => {
    const out = sink();
    writeResult(out, versionResult('1.0.0'));
    assert.deepEqual(JSON.parse(out.writes[0]!), versionResult('1.0.0'));
  });

  it('escapes <, >, & and line separators as Go does', () => {
    assert.equal(serialiseJson({ a: '<b>&\u2028' }), '{\n    "a": "\\u003cb\\u003e\\u0026\\u2028"\n}');
  });

  it('writes nothing when the value cannot be serialised', () => {
    const out = sink();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => writeResult(out, cyclic));
    assert.throws(() => writeResult(out, undefined));
    assert.deepEqual(out.writes, []);
  });
});

describe('writeError', () => {
  it('prints a CniError with the config\'s version, in one write', () => {
    const out = sink();
    const reported = writeError(out, new CniError(7, 'invalid network config', 'mtu: must be 68..65535 (got 1)'), '0.4.0');
    assert.equal(reported.code, 7);
    assert.equal(out.writes.length, 1);
    assert.equal(
      out.writes[0],
      '{\n    "cniVersion": "0.4.0",\n    "code": 7,\n    "msg": "invalid network config",\n    "details": "mtu: must be 68..65535 (got 1)"\n}',
    );
  });

  it('uses the latest version when the config\'s is unknown and leaves out empty details', () => {
    const out = sink();
    writeError(out, new CniError(4, 'bad env'));
    assert.deepEqual(JSON.parse(out.writes[0]!), { cniVersion: '1.1.0', code: 4, msg: 'bad env' });
  });

  it('reports a plain Error as code 999 with its message and no stack', () => {
    const out = sink();
    const err = new Error('boom');
    const reported = writeError(out, err, '1.0.0');
    assert.equal(reported.code, 999);
    assert.equal(reported.cause, err);
    assert.deepEqual(JSON.parse(out.writes[0]!), { cniVersion: '1.0.0', code: 999, msg: 'boom' });
    assert.ok(!out.writes[0]!.includes('at '), out.writes[0]);
  });

  it('strips a stack that was folded into msg or details', () => {
    const inner = new Error('kernel said no');
    const out = sink();
    writeError(out, new CniError(102, inner.stack!, `RTM_NEWLINK veth1: EEXIST\n${inner.stack}`), '1.1.0');
    const printed = JSON.parse(out.writes[0]!);
    assert.equal(printed.msg, 'Error: kernel said no');
    assert.equal(printed.details, 'RTM_NEWLINK veth1: EEXIST\nError: kernel said no');
    assert.doesNotMatch(out.writes[0]!, /\.ts:\d+/);
  });

  it('reports non-Error throws', () => {
    const out = sink();
    writeError(out, 'plain string', '1.1.0');
    assert.deepEqual(JSON.parse(out.writes[0]!), { cniVersion: '1.1.0', code: 999, msg: 'plain string' });
  });

  it('keeps ordinary multi-line text', () => {
    assert.equal(stripStack('line one\nline two at the end'), 'line one\nline two at the end');
  });
});

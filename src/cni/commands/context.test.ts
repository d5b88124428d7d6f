// Tests of the IPAM plan: where records live and which IPAM types are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetConf } from '../config.ts';
import { CniError } from '../errors.ts';
import { ipamPlan } from './context.ts';

const conf = (ipam: Record<string, unknown>) =>
  parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'pier', dataDir: '/var/lib/x', ipam }));

test('an IPAM type that is the main plugin itself is refused (it would delegate to itself forever)', () => {
  assert.throws(() => ipamPlan(conf({ type: 'pier' }), 'ADD'), (e: unknown) => e instanceof CniError && e.code === 7 && /main plugin itself/.test(e.message));
  assert.equal(ipamPlan(conf({ type: 'host-local' }), 'ADD').delegateIpam, 'host-local');
});

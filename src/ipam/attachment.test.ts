import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachmentFileStem, validateAttachmentKey } from './attachment.ts';
import { CniError } from '../cni/errors.ts';

test('valid keys pass', () => {
  for (const [containerID, ifname] of [['abc123', 'eth0'], ['a_b.c-d', 'net1'], ['x', 'a@b'], ['x', '123456789012345']]) {
    assert.doesNotThrow(() => validateAttachmentKey({ containerID, ifname }));
  }
});

test('keys that could escape the data dir or are not interface names are CniError 4', () => {
  const bad: [string, string, string][] = [
    ['../etc', 'eth0', 'CNI_CONTAINERID'],
    ['a/b', 'eth0', 'CNI_CONTAINERID'],
    ['', 'eth0', 'CNI_CONTAINERID'],
    ['_abc', 'eth0', 'CNI_CONTAINERID'],
    ['abc', '', 'CNI_IFNAME'],
    ['abc', '.', 'CNI_IFNAME'],
    ['abc', '..', 'CNI_IFNAME'],
    ['abc', 'a/b', 'CNI_IFNAME'],
    ['abc', 'eth:0', 'CNI_IFNAME'],
    ['abc', 'eth 0', 'CNI_IFNAME'],
    ['abc', 'eth\n0', 'CNI_IFNAME'],
    ['abc', '1234567890123456', 'CNI_IFNAME'],
    ['abc', 'ééééééé€', 'CNI_IFNAME'], // 15 characters would fit, 17 bytes do not
  ];
  for (const [containerID, ifname, variable] of bad) {
    assert.throws(
      () => validateAttachmentKey({ containerID, ifname }),
      (e: CniError) => e instanceof CniError && e.code === 4 && e.details.startsWith(variable),
      `${containerID} ${ifname}`,
    );
  }
});

test('file stems are one-to-one even though container IDs may hold "_"', () => {
  assert.equal(attachmentFileStem({ containerID: 'abc', ifname: 'eth0' }), 'abc_eth0');
  const a = attachmentFileStem({ containerID: 'abc_eth0', ifname: 'x' });
  const b = attachmentFileStem({ containerID: 'abc', ifname: 'eth0_x' });
  assert.notEqual(a, b);
  assert.equal(b, 'abc_eth0%5Fx');
  assert.equal(attachmentFileStem({ containerID: 'c', ifname: 'a@b' }), 'c_a%40b');
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { attachmentComment, COMMENT_MAX_BYTES, networkNames, networkSuffix, parseSetName } from './names.ts';

describe('networkNames', () => {
  it('names every object after the network, with a hash against sanitising clashes', () => {
    const n = networkNames('podman');
    assert.equal(n.table, 'pier');
    assert.equal(n.family, 'inet');
    assert.match(n.suffix, /^podman_[0-9a-f]{8}$/);
    assert.equal(n.chains.postrouting, `postrouting_${n.suffix}`);
    assert.equal(n.sets.hostports4AnyPort, `hostports4_any_port_${n.suffix}`);
    assert.notEqual(networkSuffix('a.b'), networkSuffix('a-b'));
    assert.equal(networkNames('x', 'pier_test_1').table, 'pier_test_1');
  });

  it('keeps names short and nft-safe for long or odd network names', () => {
    const n = networkNames(`${'x'.repeat(300)}.weird-Name`);
    for (const name of [...Object.values(n.chains), ...Object.values(n.sets)]) {
      assert.ok(name.length <= 41, name);
      assert.match(name, /^[a-z][A-Za-z0-9_]*$/);
    }
  });

  it('parses its own set names back', () => {
    const n = networkNames('cbr0');
    assert.deepEqual(parseSetName(n.sets.podaddrs6), { kind: 'podaddr', family: 6, specificHost: false, half: null, suffix: n.suffix });
    assert.deepEqual(parseSetName(n.sets.hostports4IpAddr), { kind: 'hostport', family: 4, specificHost: true, half: 'addr', suffix: n.suffix });
    assert.deepEqual(parseSetName(n.sets.hostports6AnyPort), { kind: 'hostport', family: 6, specificHost: false, half: 'port', suffix: n.suffix });
    assert.deepEqual(parseSetName(n.claims.claims6), { kind: 'claim', family: 6, specificHost: true, half: null, suffix: '' });
    assert.equal(parseSetName('somebody_elses_set'), null);
    assert.equal(parseSetName(`hostports4_${n.suffix}`), null);
  });
});

describe('attachmentComment', () => {
  it('is containerID/ifname when it fits', () => {
    assert.equal(attachmentComment({ containerID: 'abc', ifname: 'eth0' }), 'abc/eth0');
    const id = 'f'.repeat(64);
    assert.equal(attachmentComment({ containerID: id, ifname: 'eth0' }), `${id}/eth0`);
  });

  it('cuts long IDs to 128 bytes, unique by a hash, keeping the ifname', () => {
    const a = attachmentComment({ containerID: 'a'.repeat(200), ifname: 'eth0' });
    const b = attachmentComment({ containerID: `${'a'.repeat(199)}b`, ifname: 'eth0' });
    assert.equal(Buffer.byteLength(a), COMMENT_MAX_BYTES);
    assert.match(a, /^a+~[0-9a-f]{8}\/eth0$/);
    assert.notEqual(a, b);
    assert.equal(Buffer.byteLength(attachmentComment({ containerID: 'a'.repeat(124), ifname: 'eth0' })), COMMENT_MAX_BYTES);
  });

  it('never splits a multi-byte character', () => {
    const c = attachmentComment({ containerID: 'é'.repeat(100), ifname: 'eth0' });
    assert.ok(Buffer.byteLength(c) <= COMMENT_MAX_BYTES);
    assert.ok(!c.includes('\uFFFD'));
    assert.match(c, /^é+~[0-9a-f]{8}\/eth0$/);
  });
});

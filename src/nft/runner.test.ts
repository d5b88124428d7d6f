// The runner against fake nft/conntrack scripts: no root needed. The real binaries are
// exercised by test-e2e/nft-runner.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyTransaction, deleteUdpConntrack, diesWithPier, listTable, nftAvailable } from './runner.ts';
import { buildDocument } from './build-attachment.ts';
import { CniError } from '../cni/errors.ts';

let dir: string;
function fake(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

describe('runner (fake binaries)', () => {
  before(() => { dir = mkdtempSync(join(tmpdir(), 'pier-nft-runner-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('passes the document as a readable /proc/self/fd/3 and leaves no file behind', async () => {
    const seen = join(dir, 'seen.json');
    const nft = fake('nft-cat', `[ "$1 $2 $3" = "-j -f /proc/self/fd/3" ] || exit 9\ncat "$3" > ${seen}`);
    const doc = buildDocument([{ add: { table: { family: 'inet', name: 't' } } }]);
    await applyTransaction(doc, { nft });
    assert.deepEqual(JSON.parse(readFileSync(seen, 'utf8')), doc);
  });

  it('passes a document larger than a pipe holds (nft reads while Pier writes)', async () => {
    const seen = join(dir, 'seen-big.json');
    const nft = fake('nft-cat-big', `cat "$3" > ${seen}`);
    const doc = buildDocument(Array.from({ length: 3000 }, (_, i) => ({ add: { table: { family: 'inet', name: `t${i}-${'x'.repeat(60)}` } } })));
    assert.ok(JSON.stringify(doc).length > 200_000);
    await applyTransaction(doc, { nft });
    assert.deepEqual(JSON.parse(readFileSync(seen, 'utf8')), doc);
  });

  it('runs a found nft under setpriv --pdeathsig KILL; a missing nft or setpriv runs nft as it is', () => {
    assert.deepEqual(diesWithPier('/usr/sbin/nft', ['-j', '-f', '/proc/self/fd/3'], '/usr/bin/setpriv'),
      ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', '/usr/sbin/nft', '-j', '-f', '/proc/self/fd/3']]);
    // Not found: spawning the bare name keeps the ENOENT that says "install nftables".
    assert.deepEqual(diesWithPier('nft', ['-j'], '/usr/bin/setpriv'), ['nft', ['-j']]);
    assert.deepEqual(diesWithPier('/usr/sbin/nft', ['-j'], 'setpriv'), ['/usr/sbin/nft', ['-j']]);
  });

  it('turns an nft failure into code 102 with stderr in the details', async () => {
    const nft = fake('nft-fail', 'echo "internal:0:0-0: Error: Could not process rule: File exists" >&2; exit 1');
    await assert.rejects(applyTransaction(buildDocument([{ add: { table: { family: 'inet', name: 't' } } }]), { nft }), (e: unknown) =>
      e instanceof CniError && e.code === 102 && /File exists/.test(e.message) && /1x add table/.test(e.details));
  });

  it('lists a table, null when it does not exist', async () => {
    const ok = fake('nft-list', 'echo \'{"nftables": [{"metainfo": {"json_schema_version": 1}}]}\'');
    assert.deepEqual(await listTable('inet', 'pier', { nft: ok }), { nftables: [{ metainfo: { json_schema_version: 1 } }] });
    const missing = fake('nft-missing', 'echo "Error: No such file or directory" >&2; exit 1');
    assert.equal(await listTable('inet', 'pier', { nft: missing }), null);
  });

  it('says how to fix a missing nft, a build without JSON and a non-root caller', async () => {
    const none = await nftAvailable({ nft: join(dir, 'does-not-exist') });
    assert.equal(none.ok, false);
    assert.match(!none.ok ? none.fix : '', /apt-get install nftables/);
    const nojson = await nftAvailable({ nft: fake('nft-nojson', '[ "$1" = "--version" ] && { echo "nftables v1.0.6 (Lester Gooch #5)"; exit 0; }\necho "JSON support not compiled-in" >&2; exit 1') });
    assert.equal(nojson.ok, false);
    assert.match(!nojson.ok ? nojson.reason : '', /JSON support not compiled-in/);
    const eperm = await nftAvailable({ nft: fake('nft-eperm', '[ "$1" = "--version" ] && { echo "nftables v1.0.6"; exit 0; }\necho "Error: Operation not permitted" >&2; exit 1') });
    assert.match(!eperm.ok ? eperm.reason : '', /not root/);
    const good = await nftAvailable({ nft: fake('nft-good', '[ "$1" = "--version" ] && { echo "nftables v1.0.6 (Lester Gooch #5)"; exit 0; }\necho "Error: No such file or directory" >&2; exit 1') });
    assert.deepEqual(good, { ok: true, version: '1.0.6' });
  });

  it('deletes UDP conntrack entries; nothing matched and a missing binary are not errors', async () => {
    const args = join(dir, 'ct-args');
    const ct = fake('conntrack', `echo "$@" > ${args}\necho "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted." >&2`);
    assert.deepEqual(await deleteUdpConntrack(5353, 4, { conntrack: ct }), { ok: true, deleted: 2 });
    assert.equal(readFileSync(args, 'utf8').trim(), '-D -f ipv4 -p udp --orig-port-dst 5353');
    const none = fake('conntrack-none', 'echo "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted." >&2; exit 1');
    assert.deepEqual(await deleteUdpConntrack(53, 6, { conntrack: none }), { ok: true, deleted: 0 });
    const missing = await deleteUdpConntrack(53, 4, { conntrack: join(dir, 'nope') });
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? missing.reason : '', /install the conntrack package/);
  });
});

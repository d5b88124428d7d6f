// Records the nf_tables netlink batches nft itself sends for the element transactions of the
// fixtures, the expected bytes of netlink-elements.test.ts. Run as root:
// `node --import tsx src/nft/testdata/capture-netlink.ts`. Works in a throwaway netns
// (unshare -n), and reads nft's sendmsg(2) data with `strace -e write=...`.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildNetworkSetup } from '../build-network.ts';
import { attachmentElements, buildAttachmentAdd, buildAttachmentDel, buildDocument, claimsOf } from '../build-attachment.ts';
import { applyTransaction } from '../runner.ts';
import type { NftCommand } from '../expr.ts';
import { FIXTURE_NET, FIXTURE_ATTACHMENTS } from './fixtures.ts';
import { runInThrowawayNetns } from './in-netns.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

runInThrowawayNetns(import.meta.url);

const dir = mkdtempSync(join(tmpdir(), 'pier-capture-'));

/** Applies `cmds` with `nft -j -f` under strace; returns the hex of the batch nft sent. */
async function capture(cmds: NftCommand[]): Promise<string> {
  const doc = join(dir, 'doc.json');
  const trace = join(dir, 'trace');
  writeFileSync(doc, JSON.stringify(buildDocument(cmds)));
  await execa('strace', ['-qq', '-e', 'trace=sendmsg', '-e', 'write=3,4,5,6', '-o', trace, 'nft', '-j', '-f', doc]);
  // The batch is the one sendmsg; its dump lines read ` | 00000  14 00 00 00 ...  ascii |`.
  const bytes = readFileSync(trace, 'utf8')
    .split('\n')
    .map((l) => /^ \| [0-9a-f]{5}  (.{48})/.exec(l)?.[1] ?? '')
    .join(' ');
  return bytes.match(/[0-9a-f]{2}/g)!.join('');
}

await applyTransaction(buildDocument(buildNetworkSetup(FIXTURE_NET)));
const [a, b] = FIXTURE_ATTACHMENTS;
const out: Record<string, string> = {};
out['add-a'] = await capture(buildAttachmentAdd(FIXTURE_NET, a));
out['add-b'] = await capture(buildAttachmentAdd(FIXTURE_NET, b));
const recorded = attachmentElements(FIXTURE_NET, a);
out['del-a'] = await capture(buildAttachmentDel(FIXTURE_NET, [...recorded, ...claimsOf(recorded)]));
const { stdout: version } = await execa('nft', ['--version']);
const v = /v(\S+)/.exec(version)?.[1] ?? 'unknown';
writeFileSync(`${here}/netlink-batches-${v}.json`, `${JSON.stringify(out, null, 2)}\n`);
rmSync(dir, { recursive: true, force: true });
console.log(`captured nft ${v} netlink batches in ${here}`);

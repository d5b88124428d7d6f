// Regenerates the fixtures in this directory from the real nft: run as root with
// `node --import tsx src/nft/testdata/capture.ts`. It works in a throwaway network namespace
// (unshare -n), so it can use the real table name `pier` without touching the host.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildNetworkSetup } from '../build-network.ts';
import { buildAttachmentAdd, buildDocument } from '../build-attachment.ts';
import { applyTransaction, listChains, listTable } from '../runner.ts';
import { FIXTURE_NET, FIXTURE_ATTACHMENTS } from './fixtures.ts';
import { runInThrowawayNetns } from './in-netns.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

runInThrowawayNetns(import.meta.url);

await applyTransaction(buildDocument([
  ...buildNetworkSetup(FIXTURE_NET),
  ...FIXTURE_ATTACHMENTS.flatMap((a) => buildAttachmentAdd(FIXTURE_NET, a)),
]));
// An element without a comment (added by hand, as an operator might): the parser must skip it.
await execa('nft', ['add', 'element', 'inet', 'pier', 'podaddrs4_podnet_3aa0627f', '{ 10.88.0.99 }']);
const { stdout: version } = await execa('nft', ['--version']);
const v = /v(\S+)/.exec(version)?.[1] ?? 'unknown';
writeFileSync(`${here}/list-table-${v}.json`, `${JSON.stringify(await listTable('inet', 'pier'), null, 2)}\n`);
writeFileSync(`${here}/list-table-${v}.txt`, (await execa('nft', ['list', 'table', 'inet', 'pier'])).stdout + '\n');

// A docker-like filter table whose forward chain drops, next to ours.
await execa('nft', ['-f', '-'], {
  input: 'table ip filter { chain FORWARD { type filter hook forward priority filter; policy drop; iifname "docker0" accept; }; }\n' +
    'table ip6 other { chain fwd6 { type filter hook forward priority 10; policy accept; }; }\n',
});
writeFileSync(`${here}/list-chains-${v}.json`, `${JSON.stringify(await listChains(), null, 2)}\n`);
console.log(`captured nft ${v} fixtures in ${here}`);

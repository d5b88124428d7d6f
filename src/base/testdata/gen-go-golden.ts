// Regenerates go-ip-golden.txt: what Go's net.ParseIP and net.ParseCIDR make of the samples of
// ip-samples.ts. A first line with the number of samples, then, for each sample Go accepts in
// either form, its index and Go's two answers (go-parse-ip/main.go); every other sample Go
// refuses both ways. Needs Go. Run: npx tsx src/base/testdata/gen-go-golden.ts
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allSamples } from './ip-samples.ts';

const here = dirname(fileURLToPath(import.meta.url));
if (allSamples.some((s) => s.includes('\n'))) throw new Error('a sample holds a newline');
const out = execFileSync('go', ['run', 'main.go'], { cwd: join(here, 'go-parse-ip'), input: `${allSamples.join('\n')}\n`, encoding: 'utf8', maxBuffer: 1 << 26 });
const lines = out.trimEnd().split('\n');
if (lines.length !== allSamples.length) throw new Error(`go answered ${lines.length} lines for ${allSamples.length} samples`);
const accepted = lines.map((l, i) => `${i}\t${l}`).filter((l) => !l.endsWith('\t0\t0'));
writeFileSync(join(here, 'go-ip-golden.txt'), `${lines.length}\n${accepted.join('\n')}\n`);
console.log(`wrote ${accepted.length} verdicts of ${lines.length} (go ${execFileSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' }).trim()})`);

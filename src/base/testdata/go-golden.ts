// Reads go-ip-golden.txt: Go's answer for every sample of ip-samples.ts (see gen-go-golden.ts).
import { readFileSync } from 'node:fs';
import { allSamples } from './ip-samples.ts';

export interface GoVerdict {
  /** net.ParseIP: 0 refused; 4 or 6; 4m for text with a colon Go reads as IPv4 (IPv4-mapped). */
  ip: { family: '0' | '4' | '6' | '4m'; text?: string };
  /** net.ParseCIDR: the address as Go prints it and the masked network `net/ones`. */
  cidr: { family: '0' | '4' | '6' | '4m'; ip?: string; network?: string };
}

const REFUSED: GoVerdict = { ip: { family: '0' }, cidr: { family: '0' } };

/** Every sample with Go's verdict, in the order of allSamples. */
export function goVerdicts(): { sample: string; go: GoVerdict }[] {
  const [count, ...lines] = readFileSync(new URL('go-ip-golden.txt', import.meta.url), 'utf8').trimEnd().split('\n');
  if (Number(count) !== allSamples.length) throw new Error(`go-ip-golden.txt is for ${count} samples, ip-samples.ts has ${allSamples.length}: run gen-go-golden.ts`);
  const byIndex = new Map<number, GoVerdict>();
  for (const line of lines) {
    const [i, ip, cidr] = line.split('\t');
    const [ipFamily, ipText] = ip.split(' ');
    const [cidrFamily, cidrIp, network] = cidr.split(' ');
    byIndex.set(Number(i), {
      ip: { family: ipFamily as GoVerdict['ip']['family'], text: ipText },
      cidr: { family: cidrFamily as GoVerdict['cidr']['family'], ip: cidrIp, network },
    });
  }
  return allSamples.map((sample, i) => ({ sample, go: byIndex.get(i) ?? REFUSED }));
}

// Address texts for the parser tests (ip-syntax, ip-math, cidr), the same on every run, and
// what Go's net.ParseIP / net.ParseCIDR make of them (go-ip-golden.txt, by gen-go-golden.ts).

/** Hand-picked edge cases: IPv4, IPv6, zones, dotted tails, IPv4-mapped forms. */
export const handPicked = [
  '', '.', '0.0.0.0', '10.1.2.3', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1.2.3.4.', '.1.2.3.4',
  '1..2.3', '1.2.3.-4', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.04', '1.2.3.4/24', '100.200.249.250', '1000.1.1.1', '1.2.3.a',
  '::', '::1', '1::', 'fd00::1', 'fd00::', 'FD00::ABCD', 'fe80::1%eth0', 'fe80::1%', 'fe80::1%eth 0', 'fe80::1%a.b:c-d',
  '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7::', '::1:2:3:4:5:6:7', '::1:2:3:4:5:6:7:8',
  '1:2:3:4:5:6::7', '1:2:3:4:5:6:7::8', ':::', '1:::2', '1::2::3', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '12345::1', 'g::1',
  '::ffff:1.2.3.4', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', '1.2.3.4::',
  '::ffff:1.2.3', '::ffff:256.1.1.1', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4:5', 'fd00:0:0:0:0:0:0:1', '0:0:0:0:0:0:0:0',
  '::ffff:01.2.3.4', 'a:b:c:d:e:f:a:b%1', '::%x', '%x', ':', '1:', ':1', '1.2.3.4%eth0',
  // IPv4-mapped in every spelling, and its neighbours outside ::ffff:0:0/96
  '::FFFF:10.0.0.1', '::ffff:a00:1', '0:0:0:0:0:ffff:a00:1', '::ffff:0:0', '::ffff:ffff:ffff', '::fffe:ffff:ffff', '::1:0:0:0',
  '64:ff9b::1.2.3.4', '::ffff:0:1.2.3.4',
  // RFC 5952: the longest zero run, the first on a tie, no `::` for one group, lowercase
  '2001:db8:0:0:1:0:0:1', '2001:0db8:0:0:1:0:0:1', '1:0:0:2:0:0:0:3', '2001:db8:0:1:1:1:1:1', '2001:0:0:1:0:0:0:1',
  '0:0:1:0:0:0:0:0', '0:1:0:0:0:0:0:0', 'ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'fd00:0000:0000:0000:0000:0000:0000:000a',
  // prefixes: Go reads the length as decimal digits (leading zeros too), up to the family's bits
  '0.0.0.0/0', '10.0.0.0/8', '10.1.2.3/24', '10.0.0.0/31', '10.0.0.1/32', '10.0.0.0/33', '10.0.0.0/024', '10.0.0.0/08',
  '10.0.0.0/', '10.0.0.0/x', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/8/8', '10.0.0.0/ 8', '10.0.0.0 /8', '/8', '10.0.0.0/0000000000008',
  '::/0', '::/128', 'fd00::/64', 'fd00::1:2/112', 'fd00::/127', 'fd00::1/128', 'fd00::/129', 'fd00::/0128',
  'fe80::1%eth0/64', 'fe80::/64%eth0', '::ffff:10.0.0.0/104', '::ffff:10.0.0.0/120', '::ffff:a00:0/120', '64:ff9b::1.2.3.0/120',
  '::1.2.3.4/128', '01.2.3.4/8', '1.2.3.4/99999999999999999999',
];

/** A seeded generator: the same strings on every run and in every language that ports it. */
export function seededStrings(count: number, alphabet: readonly string[], seed0 = 0x9e3779b9): string[] {
  let seed = seed0;
  const rand = (n: number) => {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return seed % n;
  };
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    let s = '';
    const len = 1 + rand(14);
    for (let i = 0; i < len; i++) s += alphabet[rand(alphabet.length)];
    out.push(s);
  }
  return out;
}

/** 50,000 strings of address characters (the ones ip-text.ts was checked on against node:net). */
export const randomAddresses = seededStrings(50_000, ['0', '1', '9', 'a', 'f', 'F', 'g', ':', '::', '.', '%', '25', '255', '256', '00', 'ffff', '1.2.3.4', 'e']);

/** 20,000 `address/prefix` strings, the address parts more often valid than not. */
export const randomCidrs = seededStrings(20_000, ['0', '1', 'a', 'f', ':', '::', '.', '10.', '0.', '255', '256', '00', 'ffff', '1.2.3.4', '::ffff:'], 0x51ed270b)
  .map((s, i) => `${s}/${['0', '1', '8', '24', '31', '32', '33', '64', '96', '120', '127', '128', '129', '024', '', 'x'][i % 16]}`);

export const allSamples = [...handPicked, ...randomAddresses, ...randomCidrs];

// Small network helpers of the test cluster: CIDR lists, free ports (in a netns too), HTTPS probes.
import { execFileSync } from 'node:child_process';
import { request } from 'node:https';

/** "10.244.0.0/16,fd00:244::/56" -> { v4: '10.244.0.0/16', v6: 'fd00:244::/56' }; throws on junk. */
export function splitFamilies(list: string): { v4?: string; v6?: string } {
  const out: { v4?: string; v6?: string } = {};
  for (const cidr of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(cidr);
    if (!m) throw new Error(`not a CIDR: ${JSON.stringify(cidr)}`);
    const fam = m[1].includes(':') ? 'v6' : 'v4';
    if (out[fam]) throw new Error(`two ${fam === 'v4' ? 'IPv4' : 'IPv6'} CIDRs in ${JSON.stringify(list)}`);
    out[fam] = cidr;
  }
  if (!out.v4 && !out.v6) throw new Error(`no CIDR in ${JSON.stringify(list)}`);
  return out;
}

function v6ToBigInt(addr: string): bigint {
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${addr}`);
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bigIntToV6(n: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((n >> BigInt(16 * (7 - i))) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952), as Go and the kernel print it.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

function addrToBigInt(addr: string): bigint {
  return addr.includes(':') ? v6ToBigInt(addr) : BigInt(addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0));
}

/** True when CIDR inner lies inside CIDR outer (same family, longer or equal prefix). */
export function cidrContains(outer: string, inner: string): boolean {
  const [oa, ol] = outer.split('/');
  const [ia, il] = inner.split('/');
  if (oa.includes(':') !== ia.includes(':') || Number(il) < Number(ol)) return false;
  const bits = oa.includes(':') ? 128n : 32n;
  const shift = bits - BigInt(ol);
  return addrToBigInt(oa) >> shift === addrToBigInt(ia) >> shift;
}

/** The first host address of a CIDR: the ClusterIP the apiserver gives the kubernetes Service. */
export function firstHost(cidr: string): string {
  const [addr] = cidr.split('/');
  if (addr.includes(':')) return bigIntToV6(v6ToBigInt(addr) + 1n);
  const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) + 1;
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** https://host:port with IPv6 literals bracketed. */
export function httpsUrl(host: string, port: number): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

// Binds n listeners on port 0 at once (so the kernel hands out n different ports), prints them,
// closes them. Run in a child so it can run inside a netns.
const FREE_PORTS_JS = `
const net = require('node:net');
const n = Number(process.argv[1]);
const servers = [];
let ready = 0;
for (let i = 0; i < n; i++) {
  const s = net.createServer();
  s.listen(0, () => {
    if (++ready < n) return;
    process.stdout.write(JSON.stringify(servers.map((x) => x.address().port)));
    for (const x of servers) x.close();
  });
  servers.push(s);
}`;

/** n TCP ports that are free on every address of the netns (the host's when netns is unset). */
export function freePorts(n: number, netns?: string): number[] {
  const argv = [process.execPath, '-e', FREE_PORTS_JS, String(n)];
  const out = netns
    ? execFileSync('ip', ['netns', 'exec', netns, ...argv], { encoding: 'utf8' })
    : execFileSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  return JSON.parse(out) as number[];
}

export interface HttpsGetOptions {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Skip certificate checks (a component's self-signed serving certificate). */
  insecure?: boolean;
  timeoutMs?: number;
}

/** GET url; resolves with the status and body, rejects on connection errors and timeouts. */
export function httpsGet(url: string, opts: HttpsGetOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: !opts.insecure, timeout: opts.timeoutMs ?? 5000, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

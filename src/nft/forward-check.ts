// Finds forward-hook chains with policy drop in other tables (docker's `ip filter FORWARD`, a
// host firewall): an accept in Pier's table cannot override them, so pod traffic that they do
// not accept themselves is dropped. For STATUS and doctor warnings.
import { DEFAULT_TABLE, TABLE_FAMILY } from './model.ts';
import { listChain, listChains, type RunnerOptions } from './runner.ts';

export interface DropForwardChain {
  family: string;
  table: string;
  chain: string;
}

/**
 * The forward-hook chains with `policy drop` in `listing` (`nft -j list chains` or
 * `nft -j list ruleset`), other than Pier's own table.
 */
export function findDropForwardChains(listing: unknown, ownTable: string = DEFAULT_TABLE): DropForwardChain[] {
  const items = isObj(listing) && Array.isArray(listing.nftables) ? listing.nftables : [];
  const out: DropForwardChain[] = [];
  for (const item of items) {
    const c = isObj(item) && isObj(item.chain) ? item.chain : undefined;
    if (!c || c.hook !== 'forward' || c.policy !== 'drop') continue;
    if (c.table === ownTable && c.family === TABLE_FAMILY) continue;
    out.push({ family: String(c.family), table: String(c.table), chain: String(c.name) });
  }
  return out;
}

/**
 * Lists every chain (`nft -j list chains`: hooks and policies without rules, so its cost does
 * not grow with the size of kube-proxy's or anyone's rule set) and reports the dropping ones.
 */
export async function checkForwardPolicy(opts: RunnerOptions & { ownTable?: string } = {}): Promise<DropForwardChain[]> {
  return findDropForwardChains(await listChains(opts), opts.ownTable);
}

/**
 * Whether chain listing `listing` (`nft -j list chain ...`) accepts traffic from and to `bridge`
 * by name: some rule whose only interface match is `iifname` (resp. `oifname`) equal to the
 * bridge, an nft wildcard (`pt*`) covering it, or a set holding it, with an `accept` verdict.
 * A firewall that lets the bridge through both ways this way is taken to have been set up for
 * Pier; anything subtler (jumps, marks) is not followed and still counts as dropping.
 */
export function chainAcceptsBridge(listing: unknown, bridge: string): { in: boolean; out: boolean } {
  const items = isObj(listing) && Array.isArray(listing.nftables) ? listing.nftables : [];
  const found = { in: false, out: false };
  for (const item of items) {
    const expr = isObj(item) && isObj(item.rule) && Array.isArray(item.rule.expr) ? item.rule.expr : undefined;
    if (!expr || !expr.some((e) => isObj(e) && 'accept' in e)) continue;
    for (const e of expr) {
      const m = isObj(e) && isObj(e.match) ? e.match : undefined;
      const key = m && isObj(m.left) && isObj(m.left.meta) ? m.left.meta.key : undefined;
      if (!m || m.op !== '==' || (key !== 'iifname' && key !== 'oifname')) continue;
      const names = typeof m.right === 'string' ? [m.right] : isObj(m.right) && Array.isArray(m.right.set) ? m.right.set : [];
      if (names.some((n) => typeof n === 'string' && ifnameMatches(n, bridge))) found[key === 'iifname' ? 'in' : 'out'] = true;
    }
  }
  return found;
}

/** nft's interface-name pattern: a trailing unescaped `*` is a prefix wildcard. */
function ifnameMatches(pattern: string, name: string): boolean {
  if (pattern.endsWith('*') && !pattern.endsWith('\\*')) return name.startsWith(pattern.slice(0, -1));
  return pattern.replace(/\\\*$/, '*') === name;
}

/** A chain that drops forwarded pod traffic, with the directions it fails to accept. */
export interface ForwardBlocker extends DropForwardChain {
  missing: Array<'in' | 'out'>;
}

/**
 * The other tables' forward chains with `policy drop` that do not accept `net.bridge` both ways
 * by name (see chainAcceptsBridge). Costs one `nft list chains` and one `nft list chain` per
 * dropping chain, never the whole ruleset.
 */
export async function forwardBlockers(net: { bridge: string; table?: string }, opts: RunnerOptions = {}): Promise<ForwardBlocker[]> {
  const out: ForwardBlocker[] = [];
  for (const c of await checkForwardPolicy({ ...opts, ownTable: net.table ?? DEFAULT_TABLE })) {
    const acc = chainAcceptsBridge(await listChain(c.family, c.table, c.chain, opts), net.bridge);
    const missing = (['in', 'out'] as const).filter((d) => !acc[d]);
    if (missing.length) out.push({ ...c, missing });
  }
  return out;
}

/** What STATUS says about blockers: which chains, and the two ways to fix it. */
export function describeForwardBlockers(net: { bridge: string }, blockers: ForwardBlocker[]): string {
  const where = blockers.map((b) => `${b.family} ${b.table} ${b.chain}`).join(', ');
  const b = blockers[0];
  const fix = b.missing
    .map((d) => `nft insert rule ${b.family} ${b.table} ${b.chain} ${d === 'in' ? 'iifname' : 'oifname'} "${net.bridge}" accept`)
    .join('; ');
  return `forwarded pod traffic on bridge ${net.bridge} is dropped by the forward chain ${where} ` +
    `(policy drop), which Pier's own table cannot override; accept the bridge there (${fix}) or set that chain's policy to accept`;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

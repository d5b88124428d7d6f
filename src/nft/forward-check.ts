// Finds forward-hook chains with policy drop in other tables (docker's `ip filter FORWARD`, a
// host firewall): an accept in Pier's table cannot override them, so pod traffic that they do
// not accept themselves is dropped. For STATUS and doctor warnings.
import { DEFAULT_TABLE, TABLE_FAMILY } from './model.ts';
import { listChains, type RunnerOptions } from './runner.ts';

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

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

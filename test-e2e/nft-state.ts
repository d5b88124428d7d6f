// Reads an nft table the way the e2e tests check "no element left": a missing table and a
// failing nft are never mistaken for an empty table. `listTable` returns null only when the
// kernel says the table does not exist; `tableElements` throws then, so a DEL that drops the
// whole table (or an nft that cannot run) fails a test that expects "no element of mine".
import { spawnSync } from 'node:child_process';

/** One item of `nft -j list ...` output (`{table}`, `{chain}`, `{set}`, `{map}`, `{rule}`...). */
export type NftItem = Record<string, any>;

/** One element of a set or map, as the kernel lists it. */
export interface NftElement {
  /** The set or map holding it. */
  set: string;
  /** Its comment (Pier writes `containerID/ifname`), when it has one. */
  comment?: string;
  /** The key, as nft prints it in JSON (a value, a prefix, or `{concat: [...]}`). */
  key: unknown;
  /** For a map element, the value it maps to. */
  data?: unknown;
}

/** What nft says when the table is not there (nft 1.0.6: "No such file or directory"). */
const NO_SUCH_TABLE = /No such file or directory/;

/**
 * `nft -j list table FAMILY TABLE` inside netns `ns` (undefined: this process's netns, only for
 * tests whose runtime works there, like podman's): its items, or null when the table does not
 * exist. Throws when nft fails for any other reason, or prints something that is not a listing.
 */
export function listTable(ns: string | undefined, table: string, family = 'inet'): NftItem[] | null {
  const argv = ['-j', 'list', 'table', family, table];
  const r = ns === undefined
    ? spawnSync('nft', argv, { encoding: 'utf8' })
    : spawnSync('ip', ['netns', 'exec', ns, 'nft', ...argv], { encoding: 'utf8' });
  if (r.status !== 0) {
    if (NO_SUCH_TABLE.test(r.stderr)) return null;
    throw new Error(`nft ${argv.join(' ')}${ns ? ` in netns ${ns}` : ''} failed (${r.status ?? r.signal}): ${r.stderr || r.error}`);
  }
  const items = JSON.parse(r.stdout).nftables;
  if (!Array.isArray(items) || !items.some((i: NftItem) => i.table?.name === table)) {
    throw new Error(`nft ${argv.join(' ')} printed no table ${table}: ${r.stdout.slice(0, 200)}`);
  }
  return items;
}

/** Every element of every set and map in `items`. */
export function elementsOf(items: NftItem[]): NftElement[] {
  const out: NftElement[] = [];
  for (const item of items) {
    const s = item.set ?? item.map;
    if (!s) continue;
    for (const e of s.elem ?? []) {
      // Set elements are `{elem: {val, comment}}` (or a bare value without comment); map
      // elements are `[that, data]`.
      const [k, data] = Array.isArray(e) ? e : [e, undefined];
      const el = k !== null && typeof k === 'object' && 'elem' in k ? k.elem : { val: k };
      out.push({ set: s.name, key: el.val, ...(el.comment !== undefined && { comment: el.comment }), ...(data !== undefined && { data }) });
    }
  }
  return out;
}

/**
 * The elements of table `table` in netns `ns`, all or those commented `owner`. Throws when the
 * table does not exist: "no element left" must not pass because everything is gone.
 */
export function tableElements(ns: string | undefined, table: string, owner?: string): NftElement[] {
  const items = listTable(ns, table);
  if (items === null) throw new Error(`table inet ${table} does not exist${ns ? ` in netns ${ns}` : ''}`);
  const all = elementsOf(items);
  return owner === undefined ? all : all.filter((e) => e.comment === owner);
}

/**
 * Each element's comment (its owner; the key as JSON for one without), in the kernel's order;
 * none when the table does not exist (a runtime's table before its first pod or after its
 * last). Throws when nft fails, as listTable does.
 */
export function elementLabels(ns: string | undefined, table: string): string[] {
  return elementsOf(listTable(ns, table) ?? []).map((e) => e.comment ?? JSON.stringify(e.key));
}

/** The sorted, distinct comments (attachment keys) of the table's elements. */
export function elementOwners(ns: string | undefined, table: string): string[] {
  return [...new Set(tableElements(ns, table).flatMap((e) => (e.comment === undefined ? [] : [e.comment])))].sort();
}

/**
 * The table's sets and maps with their elements in a canonical order (the kernel lists a hash
 * set in its own order), as comparable strings: equal before and after means no element changed.
 */
export function canonicalElements(ns: string | undefined, table: string): string[] {
  return tableElements(ns, table).map((e) => JSON.stringify(e)).sort();
}

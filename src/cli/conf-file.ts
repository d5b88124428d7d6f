// Reads a network config for the CLI: a single plugin config (.conf/.json) or a conflist,
// from which Pier's entry is taken with the list's name and cniVersion filled in.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultNetworkConf } from './default-network.ts';

export class CliError extends Error {
  constructor(
    msg: string,
    readonly hint: string,
  ) {
    super(msg);
  }
}

/** Pier's plugin config out of a parsed file (conf or conflist). */
export function pierEntry(doc: Record<string, unknown>, source: string): Record<string, unknown> {
  if (Array.isArray(doc.plugins)) {
    const entry = (doc.plugins as Array<Record<string, unknown>>).find((p) => p && p.type === 'pier');
    if (!entry) throw new CliError(`${source}: no plugin of type "pier" in the conflist`, 'add {"type": "pier", ...} to "plugins"');
    return { cniVersion: doc.cniVersion, name: doc.name, ...entry, type: 'pier' };
  }
  return doc;
}

/** Loads `-c FILE`, or the embedded default network when no file is given. */
export function loadNetworkConf(file?: string): Record<string, unknown> {
  if (!file) return defaultNetworkConf();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 'pass a readable .conf or .conflist with -c');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not valid JSON: ${(err as Error).message}`, 'check the file with `python3 -m json.tool FILE`');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`${file} is not a JSON object`, 'a network config is a JSON object');
  return pierEntry(doc as Record<string, unknown>, file);
}

/** Every Pier network config in a CNI config dir (for doctor, status, gc, resync). */
export function findPierConfs(confDir: string): Array<{ file: string; conf: Record<string, unknown> }> {
  let names: string[];
  try {
    names = readdirSync(confDir).filter((n) => /\.(conf|conflist|json)$/.test(n)).sort();
  } catch {
    return [];
  }
  const out: Array<{ file: string; conf: Record<string, unknown> }> = [];
  for (const n of names) {
    try {
      out.push({ file: join(confDir, n), conf: loadNetworkConf(join(confDir, n)) });
    } catch {
      /* not Pier's, or unreadable: doctor reports configs it can read */
    }
  }
  return out.filter((c) => c.conf.type === 'pier');
}

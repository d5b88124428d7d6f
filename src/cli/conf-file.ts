// Reads a network config for the CLI: a single plugin config (.conf/.json) or a conflist,
// from which Pier's entry is taken with the list's name and cniVersion filled in.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultNetworkConf } from './default-network.ts';
import { canonicalKeys } from '../cni/config-keys.ts';
import { foldKeys, isPlainObject, keyShape } from '../cni/fold-keys.ts';
import { compareVersions, isSupportedVersion } from '../cni/versions.ts';

export class CliError extends Error {
  constructor(
    msg: string,
    readonly hint: string,
  ) {
    super(msg);
  }
}

const CONFLIST_SHAPE = keyShape(['cniVersion', 'cniVersions', 'name', 'plugins']);

/**
 * A conflist's version as libcni 1.2 and newer pick it: the highest of `cniVersions` and
 * `cniVersion` that Pier knows (libcni 1.1 reads `cniVersion` alone, so shipped lists keep it at
 * a version those runtimes read). Unchanged when none is known: the parser then says why.
 */
export function listVersion(doc: Record<string, unknown>): unknown {
  const candidates = [...(Array.isArray(doc.cniVersions) ? doc.cniVersions : []), doc.cniVersion].filter(isSupportedVersion);
  if (!candidates.length) return doc.cniVersion;
  return candidates.reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b));
}

/**
 * Pier's plugin config out of a parsed file (conf or conflist), with the keys Pier reads in
 * their canonical spelling (runtimes read them case-insensitively, as Go does).
 */
export function pierEntry(doc: Record<string, unknown>, source: string): Record<string, unknown> {
  const list = foldKeys(doc, CONFLIST_SHAPE) as Record<string, unknown>;
  if (Array.isArray(list.plugins)) {
    const entry = list.plugins.map((p) => (isPlainObject(p) ? canonicalKeys(p) : {})).find((p) => p.type === 'pier');
    if (!entry) throw new CliError(`${source}: no plugin of type "pier" in the conflist`, 'add {"type": "pier", ...} to "plugins"');
    return { cniVersion: listVersion(list), name: list.name, ...entry, type: 'pier' };
  }
  return canonicalKeys(doc);
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

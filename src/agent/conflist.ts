// This node's CNI network config list: rendered from the node's podCIDRs and the agent's
// settings (pure), written atomically and only when its bytes change (thin).
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const CONFLIST_NAME = '10-pier.conflist';

export interface ConflistSettings {
  name: string;
  cniVersion: string;
  bridge: string;
  mtu: number;
  /** Pier's store (pier-ipam's dataDir). */
  dataDir: string;
  /** The file STATUS waits for (the plugin's `readyFile`). */
  readyFile: string;
  /** A conflist to start from (--conflist-template), parsed. */
  template?: Record<string, unknown>;
}

/** What a template may not decide, because the agent's design depends on it. */
export interface TemplateNote {
  field: string;
  was: unknown;
  now: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The conflist text for `podCidrs` (one per family, IPv4 first). The pier entry gets a gateway
 * on the bridge and a default route per family, hostPort support (portMappings: DNAT, hairpin
 * and 127.0.0.1 are Pier's own, no portmap plugin), and `ipMasq: false`: the agent masquerades
 * by its own table so that pod-to-pod traffic across nodes keeps its source (see
 * src/nft/cluster-masquerade.ts). No loopback entry: containerd and CRI-O set up lo themselves.
 *
 * With a template, its first entry of type pier is the base: its fields stay unless the agent
 * owns them (ranges, dataDir, readyFile, ipMasq), and flags given explicitly override it; its
 * other entries (a bandwidth or tuning plugin, say) stay in place. `notes` lists what was
 * overridden, for the log.
 */
export function renderConflist(podCidrs: readonly string[], s: ConflistSettings, explicit: { bridge?: boolean; mtu?: boolean } = {}): { text: string; notes: TemplateNote[] } {
  const notes: TemplateNote[] = [];
  const tpl = s.template ? structuredClone(s.template) : undefined;
  const plugins = Array.isArray(tpl?.plugins) ? (tpl.plugins as unknown[]) : [];
  const at = plugins.findIndex((p) => isObject(p) && p.type === 'pier');
  const base: Record<string, unknown> = at >= 0 ? (plugins[at] as Record<string, unknown>) : {};
  const ipamBase = isObject(base.ipam) ? base.ipam : {};
  const sorted = [...podCidrs].sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
  const entry: Record<string, unknown> = {
    type: 'pier',
    bridge: s.bridge,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: false,
    hairpinMode: true,
    mtu: s.mtu,
    capabilities: { portMappings: true },
    ...base,
  };
  if (explicit.bridge || base.bridge === undefined) entry.bridge = s.bridge;
  if (explicit.mtu || base.mtu === undefined) entry.mtu = s.mtu;
  if (base.ipMasq === true) notes.push({ field: 'ipMasq', was: true, now: false });
  entry.ipMasq = false;
  entry.readyFile = s.readyFile;
  entry.ipam = {
    ...ipamBase,
    type: 'pier-ipam',
    ranges: sorted.map((subnet) => [{ subnet }]),
    routes: isObject(ipamBase) && Array.isArray(ipamBase.routes) ? ipamBase.routes : sorted.map((c) => ({ dst: c.includes(':') ? '::/0' : '0.0.0.0/0' })),
    dataDir: s.dataDir,
  };
  if (isObject(ipamBase) && ipamBase.type !== undefined && ipamBase.type !== 'pier-ipam') notes.push({ field: 'ipam.type', was: ipamBase.type, now: 'pier-ipam' });
  const list: Record<string, unknown> = {
    cniVersion: s.cniVersion,
    name: s.name,
    ...(tpl ?? {}),
  };
  if (!s.template || tpl?.cniVersion === undefined) list.cniVersion = s.cniVersion;
  if (!s.template || tpl?.name === undefined) list.name = s.name;
  const out = [...plugins];
  if (at >= 0) out[at] = entry;
  else out.unshift(entry);
  list.plugins = out;
  return { text: `${JSON.stringify(list, null, 2)}\n`, notes };
}

/**
 * Writes `text` to `<dir>/10-pier.conflist` unless it already holds exactly that; returns
 * whether it wrote. A temp file in the same directory, synced, then renamed over the old one:
 * a runtime reading the directory sees the old list or the new one, never a part of either. The
 * temp name starts with a dot and does not end in .conf/.conflist/.json, so no runtime loads it.
 */
export function writeConflist(dir: string, text: string): boolean {
  const file = join(dir, CONFLIST_NAME);
  try {
    if (readFileSync(file, 'utf8') === text) return false;
  } catch {
    /* missing or unreadable: write it */
  }
  return writeFileAtomic(file, text);
}

/** Writes `file` whole or not at all (temp + fsync + rename). */
export function writeFileAtomic(file: string, text: string, mode = 0o644): true {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${file.slice(dirname(file).length + 1)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return true;
}

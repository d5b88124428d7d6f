// Runs a CNI command in-process through the very code path runtimes use (runPlugin).
import { dirname } from 'node:path';
import { productionDeps, runPlugin } from '../cni/plugin.ts';
import { createNftNat } from '../nft/nat-driver.ts';
import { CliError } from './conf-file.ts';
import { resolveLogOptions } from '../cni/log.ts';

export interface CniRun {
  command: 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';
  conf: Record<string, unknown>;
  containerId?: string;
  netns?: string;
  ifname?: string;
  env: Record<string, string | undefined>;
}

/** Runs the command; returns the parsed result (or undefined), throws CliError on a CNI error. */
export async function runCni(r: CniRun): Promise<Record<string, unknown> | undefined> {
  let out = '';
  const env: Record<string, string | undefined> = {
    CNI_COMMAND: r.command,
    CNI_PATH: [dirname(process.execPath), '/opt/cni/bin', '/usr/lib/cni'].join(':'),
    PIER_LOG_FILE: r.env.PIER_LOG_FILE,
    PIER_LOG_LEVEL: r.env.PIER_LOG_LEVEL,
  };
  if (r.containerId !== undefined) env.CNI_CONTAINERID = r.containerId;
  if (r.netns !== undefined) env.CNI_NETNS = r.netns;
  if (r.ifname !== undefined) env.CNI_IFNAME = r.ifname;
  const code = await runPlugin({ env, stdin: JSON.stringify(r.conf), stdout: { write: (s: string) => (out += s) } }, 'pier', productionDeps(createNftNat()));
  const json = out.trim() ? (JSON.parse(out) as Record<string, unknown>) : undefined;
  if (code !== 0) {
    const msg = typeof json?.msg === 'string' ? json.msg : 'failed';
    const details = typeof json?.details === 'string' && json.details ? ` (${json.details})` : '';
    throw new CliError(`${r.command} failed: ${msg}${details}`, hintFor(json?.code, logFileOf(r)));
  }
  return json;
}

/** The log this run wrote to, as the plugin chose it (PIER_LOG_FILE, the config's logFile, the default). */
function logFileOf(r: CniRun): string {
  const logFile = typeof r.conf.logFile === 'string' ? r.conf.logFile : undefined;
  return resolveLogOptions(r.env, { ...(logFile && { logFile }) }).file;
}

function hintFor(code: unknown, logFile: string): string {
  switch (code) {
    case 7:
      return 'the network config is invalid: fix the field named above';
    case 11:
      return 'another Pier command holds the store lock: try again in a moment';
    case 100:
      return 'the pod subnet is full: run `pier gc` or use a larger subnet';
    case 101:
      return 'that address or host port is taken: see `pier ls`';
    case 102:
      return 'a kernel operation failed: run `pier doctor`';
    default:
      return `see ${logFile} for the whole story, or run \`pier doctor\``;
  }
}

// The plugin entry: env + stdin in, one JSON reply on stdout, an exit code out. Tests call it
// in-process; the executable calls it with the real process streams.
import { parseCniEnv, type AttachEnv, type DelEnv, type NodeEnv } from './env.ts';
import { parseCniArgs } from './cni-args.ts';
import { parseNetConf, peekCniVersion } from './config.ts';
import { createLogger, resolveLogOptions, type Logger } from './log.ts';
import { writeError, writeResult, type TextSink } from './output.ts';
import { assertCommandAllowed, versionResult } from './versions.ts';
import { PIER_IPAM, checkPierFields, ipamPlan, type CommandDeps, type Ctx } from './commands/context.ts';
import { cmdAdd } from './commands/add.ts';
import { cmdDel } from './commands/del.ts';
import { cmdCheck } from './commands/check.ts';
import { cmdStatus } from './commands/status.ts';
import { cmdGc } from './commands/gc.ts';
import { ipamPluginCommand } from './commands/ipam-plugin.ts';
import { defaultIpamDeps } from '../ipam/ipam.ts';
import { CniError, ErrorCode } from './errors.ts';
import type { NatDriver } from './commands/nat.ts';
import { mark } from '../trace.ts';

export interface PluginIo {
  env: Record<string, string | undefined>;
  stdin: string | Buffer;
  stdout: TextSink;
}

export type PluginMode = 'pier' | 'pier-ipam';

/** Builds the production dependencies; tests pass their own. */
export type DepsFactory = (log: Logger) => CommandDeps;

/** Runs one CNI command; returns the exit code. Never throws. */
export async function runPlugin(io: PluginIo, mode: PluginMode, makeDeps: DepsFactory): Promise<number> {
  let version: string | undefined;
  let log: Logger | undefined;
  try {
    version = peekCniVersion(io.stdin);
    const env = parseCniEnv(io.env);
    if (env.command === 'VERSION') {
      writeResult(io.stdout, versionResult(version));
      return 0;
    }
    const conf = parseNetConf(io.stdin, mode === 'pier-ipam' ? 'ipam' : 'plugin');
    mark('config parsed');
    version = conf.cniVersion;
    assertCommandAllowed(env.command, conf.cniVersion);
    log = createLogger({
      ...resolveLogOptions(io.env, conf),
      fields: { cmd: env.command, net: conf.name, ...('containerId' in env && { cid: env.containerId, ifname: env.ifname }) },
    });
    mark('logger');
    const cniArgs = parseCniArgs(env.args);
    if (mode === 'pier' && conf.type !== 'pier' && conf.type !== PIER_IPAM) {
      log.warn(`config type is ${JSON.stringify(conf.type)}; running as pier`);
    }
    // The main plugin's own fields: not pier-ipam's business (its caller's config).
    if (mode === 'pier') checkPierFields(conf, env.command);
    const plan = ipamPlan(conf, env.command);
    const ctx: Ctx = { env, rawEnv: io.env, stdin: io.stdin, conf, cniArgs, deps: makeDeps(log), ...plan };
    log.debug('start');
    mark('ctx ready');
    const out = mode === 'pier-ipam' ? await ipamPluginCommand(ctx) : await runMain(ctx);
    mark('command done');
    if (out) writeResult(io.stdout, out);
    mark('result written');
    return 0;
  } catch (err) {
    const e = writeError(io.stdout, err, version);
    log?.error('failed', { error: err });
    // Like the Go library: the code is in the JSON; the exit status is just "failed".
    void e;
    return 1;
  }
}

async function runMain(ctx: Ctx): Promise<Record<string, unknown> | undefined> {
  switch (ctx.env.command) {
    case 'ADD':
      return cmdAdd(ctx as Ctx<AttachEnv>);
    case 'DEL':
      await cmdDel(ctx as Ctx<DelEnv>);
      return undefined;
    case 'CHECK':
      await cmdCheck(ctx as Ctx<AttachEnv>);
      return undefined;
    case 'STATUS':
      await cmdStatus(ctx as Ctx<NodeEnv>);
      return undefined;
    case 'GC':
      await cmdGc(ctx as Ctx<NodeEnv>);
      return undefined;
    default:
      throw new CniError(ErrorCode.InvalidEnv, `unexpected CNI_COMMAND ${ctx.env.command}`);
  }
}

/** The production dependencies: the disk store, the log, and the given NAT driver. */
export function productionDeps(nat: NatDriver): DepsFactory {
  return (log) => ({ ipam: defaultIpamDeps((msg) => log.warn(msg)), log, nat });
}

// Runs a delegated IPAM plugin from CNI_PATH as the spec says: same env but CNI_COMMAND, full stdin.
import { accessSync, constants, statSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, ErrorCode } from '../errors.ts';

/** Finds an executable plugin by name in CNI_PATH; the name must be a plain file name. */
export function findPlugin(type: string, cniPath: readonly string[]): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/.test(type)) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid plugin type ${JSON.stringify(type)}`, 'ipam.type must be a plain executable name');
  }
  for (const dir of cniPath) {
    const file = join(dir, type);
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  throw new CniError(ErrorCode.InvalidConfig, `failed to find plugin "${type}" in path [${cniPath.join(' ')}]`, 'CNI_PATH');
}

const ETXTBSY_RETRIES = 5;

/**
 * Runs `type` with `command`; returns its parsed stdout (undefined when it printed nothing,
 * as DEL does). A CNI error it printed is rethrown with its own code.
 */
export function execDelegate(
  type: string,
  command: string,
  env: Record<string, string | undefined>,
  stdin: string | Buffer,
  cniPath: readonly string[],
): unknown {
  const file = findPlugin(type, cniPath);
  const childEnv = { ...env, CNI_COMMAND: command };
  for (let attempt = 0; ; attempt++) {
    // Loaded here, not at start-up: node:child_process brings net, dgram and tty into the startup
    // snapshot that every run deserialises, for the few networks that delegate IPAM.
    const { spawnSync } = process.getBuiltinModule('node:child_process');
    const r = spawnSync(file, [], { env: childEnv, input: stdin, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
    if (r.error) {
      // "text file busy": the binary is being replaced right now; the new one is a moment away.
      if ((r.error as NodeJS.ErrnoException).code === 'ETXTBSY' && attempt < ETXTBSY_RETRIES) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50 * (attempt + 1));
        continue;
      }
      throw new CniError(ErrorCode.Delegate, `failed to run IPAM plugin ${type}: ${r.error.message}`, file, { cause: r.error });
    }
    const out = r.stdout.toString('utf8').trim();
    let parsed: unknown;
    if (out) {
      try {
        parsed = JSON.parse(out);
      } catch {
        throw new CniError(ErrorCode.Delegate, `IPAM plugin ${type} printed something that is not JSON`, out.slice(0, 500));
      }
    }
    if (r.status !== 0) {
      const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      if (e && typeof e.code === 'number' && typeof e.msg === 'string') {
        throw new CniError(e.code, `${type}: ${e.msg}`, typeof e.details === 'string' ? e.details : '');
      }
      const why = r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
      throw new CniError(ErrorCode.Delegate, `IPAM plugin ${type} failed (${why})`, r.stderr.toString('utf8').slice(0, 500));
    }
    return parsed;
  }
}

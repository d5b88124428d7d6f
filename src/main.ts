// Entry point: decides between CNI plugin mode (CNI_COMMAND set), IPAM-only plugin mode (invoked
// as `pier-ipam`) and the human CLI, then hands over. Only this file touches process state.
import './zod-config.ts';
import { readSync } from 'node:fs';
import { basename } from 'node:path';
import { productionDeps, runPlugin } from './cni/plugin.ts';
import { runCli } from './cli/cli.ts';
import { createNftNat } from './nft/nat-driver.ts';

/** Reads all of stdin synchronously (a plugin's stdin is a small pipe or file). */
function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue;
      if (code === 'EOF' || code === 'EBADF') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
    // More than the config limit is refused by the parser anyway; stop reading early.
    if (chunks.reduce((s, c) => s + c.length, 0) > 2 * 1024 * 1024) break;
  }
  return Buffer.concat(chunks);
}

/** Runs Pier for this process; resolves to the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  // argv[1] is the name Pier was invoked as (through a hard link or symlink), argv[0] the binary.
  const invokedAs = basename(argv[1] ?? argv[0] ?? 'pier');
  const stdout = process.stdout;
  // A runtime always sets CNI_COMMAND; one that forgot it but set other CNI_* variables still
  // gets a CNI error on stdout (code 4), not the human CLI's help text.
  const cniCall = env.CNI_COMMAND !== undefined || ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'].some((k) => env[k] !== undefined);
  if (cniCall) {
    const mode = invokedAs.startsWith('pier-ipam') ? 'pier-ipam' : 'pier';
    const nat = createNftNat();
    return runPlugin({ env, stdin: readStdin(), stdout }, mode, productionDeps(nat));
  }
  return runCli({ argv: argv.slice(2), env, stdout, stderr: process.stderr });
}

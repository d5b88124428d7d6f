// Entry point: decides between CNI plugin mode (CNI_COMMAND set), IPAM-only plugin mode (invoked
// as `pier-ipam`) and the human CLI, then hands over. Only this file touches process state.
import './zod-config.ts';
import { readSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { productionDeps, runPlugin } from './cni/plugin.ts';
import { createNftNat } from './nft/nat-driver.ts';
import { runCli } from './cli/cli.ts';
import { mark } from './trace.ts';

/** Reads all of stdin (or `fd`) synchronously (a plugin's stdin is a small pipe or file). */
export function readStdin(fd = 0): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
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

/**
 * stdout written with write(2) until every byte is out. process.stdout on a pipe queues what
 * the pipe cannot take at once, and the process.exit() that follows the reply dropped it: a
 * reply over 128 KiB (an error naming a 70,000-character container ID twice) reached the
 * runtime cut short, as invalid JSON.
 */
export function syncWriter(fd: number) {
  return {
    write(text: string): boolean {
      const buf = Buffer.from(text);
      let pause: Int32Array | undefined;
      for (let off = 0; off < buf.length; ) {
        try {
          off += writeSync(fd, buf, off, buf.length - off);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          pause ??= new Int32Array(new SharedArrayBuffer(4));
          Atomics.wait(pause, 0, 0, 1);
        }
      }
      return true;
    },
  };
}

const syncStdout = syncWriter(1);

const CNI_VARIABLES = ['CNI_COMMAND', 'CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_ARGS', 'CNI_PATH'];

/**
 * Whether this process is a runtime's plugin call rather than a person's command. Runtimes
 * (libcni, podman, containerd) exec a plugin with no arguments at all, so any word on the command
 * line means the CLI, whatever CNI_* variables the shell exports: the cnitool instructions have
 * users export CNI_PATH, and `pier ls` must still list there. Without arguments, a runtime always
 * sets CNI_COMMAND; one that forgot it but set other CNI_* variables still gets a CNI error on
 * stdout (code 4), not the human CLI's help text.
 */
export function isRuntimeCall(argv: string[], env: NodeJS.ProcessEnv): boolean {
  if (argv.length > 2) return false;
  return CNI_VARIABLES.some((k) => env[k] !== undefined);
}

/** Runs Pier for this process; resolves to the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  // argv[1] is the name Pier was invoked as (through a hard link or symlink), argv[0] the binary.
  const invokedAs = basename(argv[1] ?? argv[0] ?? 'pier');
  if (isRuntimeCall(argv, env)) {
    const mode = invokedAs.startsWith('pier-ipam') ? 'pier-ipam' : 'pier';
    const nat = createNftNat();
    const stdin = readStdin();
    mark('stdin read');
    return runPlugin({ env, stdin, stdout: syncStdout }, mode, productionDeps(nat));
  }
  // process.stdout is made on first use (a stream over a pipe pulls in net and stream): the
  // plugin path above never touches it.
  return runCli({ argv: argv.slice(2), env, stdout: process.stdout, stderr: process.stderr });
}

// Entry point: decides between CNI plugin mode (CNI_COMMAND set), IPAM-only plugin mode (invoked
// as `pier-ipam`) and the human CLI, then hands over. Only this file touches process state.
import { basename } from 'node:path';
import { PIER_VERSION } from './version.ts';

/** Runs Pier for this process; resolves to the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const invokedAs = basename(argv[1] ?? argv[0] ?? 'pier');
  if (argv.slice(2).includes('--version') && !env.CNI_COMMAND) {
    process.stdout.write(`pier ${PIER_VERSION}\n`);
    return 0;
  }
  void invokedAs;
  process.stderr.write('pier: not implemented yet\n');
  return 1;
}

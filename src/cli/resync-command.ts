// `pier resync`: placeholder until the nftables rebuild lands.
export async function resyncCommand(o: { dataDir: string; io: { stderr: { write(s: string): unknown } } }): Promise<number> {
  o.io.stderr.write(`pier resync: not available in this build (store ${o.dataDir})\n`);
  return 1;
}

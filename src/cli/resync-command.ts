// `pier resync [--data-dir DIR] [--table T] [--prune]`: prints what the rebuild did.
import { resync } from './resync.ts';

export async function resyncCommand(o: {
  dataDir: string;
  table?: string;
  prune: boolean;
  io: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } };
}): Promise<number> {
  const report = await resync({
    dataDir: o.dataDir,
    ...(o.table && { table: o.table }),
    prune: o.prune,
    warn: (msg) => o.io.stderr.write(`pier resync: ${msg}\n`),
  });
  o.io.stdout.write(
    `rebuilt ${report.tables.length ? report.tables.map((t) => `inet ${t}`).join(', ') : 'nothing (no attachments)'}: ` +
      `${report.networks} network(s), ${report.attachments} attachment(s), ${report.elements} element(s)` +
      `${report.pruned ? `, ${report.pruned} leftover element(s) pruned` : ''}\n`,
  );
  for (const s of report.skipped) o.io.stdout.write(`skipped: ${s}\n`);
  return report.skipped.length ? 1 : 0;
}

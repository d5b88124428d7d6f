// Bundle entry: runs main() now, or, while Node builds the single executable's V8 startup
// snapshot, leaves the evaluated application in the snapshot and runs main() at each start-up.
import * as v8 from 'node:v8';
import { main } from './main.ts';
import { enableTrace, mark, traceReport } from './trace.ts';
import { warmUp } from './warm-up.ts';
import { exitNow } from './netlink/libc.ts';

function run(): void {
  // argv and env are read here, never at module top level: in the snapshot they would be the
  // build machine's.
  if (process.env.PIER_TRACE) enableTrace();
  mark('main');
  main(process.argv, process.env).then(
    // Exit at once: the reply is written (stdout to a pipe or file is synchronous on Linux) and
    // nothing else is pending; waiting for Node's orderly teardown cost a few ms per call.
    (code) => {
      mark('done');
      const t = traceReport();
      if (t) process.stderr.write(t);
      exitNow(code);
      process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`pier: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  // Compile the hot paths into the snapshot (see warm-up.ts). A failing warm-up is an unhandled
  // rejection, which fails the build.
  void warmUp().then(() => v8.startupSnapshot.setDeserializeMainFunction(run));
} else {
  run();
}

// Runs Pier's plugin in-process as dist/pier does, with the production dependencies except a NAT
// driver whose `del` and/or `gc` fail (PIER_TEST_FAIL_NAT=del,gc), as when the kernel refuses a
// transaction. Injected through the plugin's dependency factory: no hook in product code.
// For test-e2e only, run like the plugin: inside a throwaway host netns, CNI env, stdin.
import { productionDeps, runPlugin } from '../src/cni/plugin.ts';
import type { NatDriver } from '../src/cni/commands/nat.ts';
import { createNftNat } from '../src/nft/nat-driver.ts';
import { readStdin, syncWriter } from '../src/main.ts';

const fail = new Set((process.env.PIER_TEST_FAIL_NAT ?? '').split(','));
const refuse = (what: string) => async () => {
  throw new Error(`injected failure: nft refused the ${what} transaction`);
};
const real = createNftNat();
const nat: NatDriver = {
  ...real,
  del: fail.has('del') ? refuse('DEL') : real.del,
  gc: fail.has('gc') ? refuse('GC') : real.gc,
};
process.exitCode = await runPlugin({ env: process.env, stdin: readStdin(), stdout: syncWriter(1) }, 'pier', productionDeps(nat));

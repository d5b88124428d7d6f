// For the capture scripts here: re-runs the calling script in a throwaway network namespace
// (unshare -n), so it can use real table names and nft without touching the host.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Returns at once inside the throwaway netns; otherwise runs the script there and exits. */
export function runInThrowawayNetns(scriptUrl: string): void {
  if (process.env.PIER_CAPTURE_IN_NETNS === '1') return;
  const r = spawnSync('unshare', ['-n', process.execPath, '--import', 'tsx', fileURLToPath(scriptUrl)], {
    stdio: 'inherit',
    env: { ...process.env, PIER_CAPTURE_IN_NETNS: '1' },
  });
  process.exit(r.status ?? 1);
}

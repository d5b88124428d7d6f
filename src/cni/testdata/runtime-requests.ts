// The requests containerd 1.6 and podman 4.3 really sent to the reference plugins on a Debian 12
// machine, one JSON per call: {call, client, env, stdin, stdout}. Kept in the repository so that
// a plain clone runs its own tests (they were first read from a folder beside the clone).
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The folder holding the captured calls. */
export const RUNTIME_REQUESTS_DIR = fileURLToPath(new URL('./runtime-requests/', import.meta.url));

/** One captured call, by file name without `.json` (e.g. `containerd-bridge-ADD`). */
export function runtimeRequest(name: string): any {
  return JSON.parse(readFileSync(`${RUNTIME_REQUESTS_DIR}${name}.json`, 'utf8'));
}

/** Names of every captured call, sorted. */
export function runtimeRequestNames(): string[] {
  return readdirSync(RUNTIME_REQUESTS_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

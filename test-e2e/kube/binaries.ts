// The Kubernetes components built from the Go module beside this file (scripts/kube-build.sh).
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface KubeBinaries {
  dir: string;
  apiserver: string;
  controllerManager: string;
  kubelet: string;
  scheduler: string;
  etcd: string;
  /** The Kubernetes version, e.g. v1.34.4 (the cache folder's name). */
  version: string;
}

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

let cached: KubeBinaries | undefined;

/**
 * The binaries, built first when missing (the first build on a machine takes a long time; later
 * calls are quick: the script only checks its stamp). Build progress goes to this process's stderr.
 */
export function kubeBinaries(): KubeBinaries {
  if (cached) return cached;
  const r = spawnSync('bash', [join(REPO_ROOT, 'scripts/kube-build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`scripts/kube-build.sh failed (${r.error?.message ?? `exit ${r.status}`})`);
  const dir = r.stdout.trimEnd().split('\n').pop() ?? '';
  if (!dir.startsWith('/')) throw new Error(`scripts/kube-build.sh printed no directory: ${JSON.stringify(r.stdout)}`);
  cached = {
    dir,
    apiserver: join(dir, 'kube-apiserver'),
    controllerManager: join(dir, 'kube-controller-manager'),
    kubelet: join(dir, 'kubelet'),
    scheduler: join(dir, 'kube-scheduler'),
    etcd: join(dir, 'etcd'),
    version: basename(dir),
  };
  return cached;
}

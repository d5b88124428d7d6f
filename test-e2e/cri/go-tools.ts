// Where the Go-built tools of the runtime tests are (scripts/go-tools.sh builds them, at the
// versions of test-e2e/go-pins.json), and the CRI api.proto from the Go module cache.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const pins = JSON.parse(readFileSync(join(ROOT, 'test-e2e/go-pins.json'), 'utf8')) as { criApi: string; containerd2: string; cnitool: string[] };

export const CRI_API_VERSION = pins.criApi;
export const CONTAINERD2_VERSION = pins.containerd2;
export const CNITOOL_VERSIONS = pins.cnitool;

/** Runs scripts/go-tools.sh (a no-op when everything is built); throws with its stderr. */
export function ensureGoTools(): void {
  const r = spawnSync('bash', [join(ROOT, 'scripts/go-tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30 * 60_000 });
  if (r.status !== 0) throw new Error(`scripts/go-tools.sh failed: ${r.error?.message ?? r.stderr}`);
}

export function containerd2Dir(): string {
  return join(process.env.PIER_CONTAINERD_CACHE ?? '/var/cache/pier-containerd', CONTAINERD2_VERSION);
}

export function cnitoolPath(version: string): string {
  return join(process.env.PIER_CNITOOL_CACHE ?? '/var/cache/pier-cnitool', version, 'cnitool');
}

/**
 * The path of `pkg/apis/runtime/v1/api.proto` of k8s.io/cri-api at the pinned version, in the Go
 * module cache. `go mod download` answers from the cache when the module is there, and fetches it
 * through the module proxy otherwise.
 */
export function criApiProto(): string {
  const r = spawnSync('go', ['mod', 'download', '-json', `k8s.io/cri-api@${CRI_API_VERSION}`], {
    encoding: 'utf8',
    cwd: tmpdir(),
    env: { ...process.env, GOWORK: 'off', GOFLAGS: '-mod=mod' },
    timeout: 10 * 60_000,
  });
  if (r.status !== 0) throw new Error(`go mod download k8s.io/cri-api@${CRI_API_VERSION}: ${r.error?.message ?? r.stdout + r.stderr}`);
  const dir = (JSON.parse(r.stdout) as { Dir?: string }).Dir;
  const proto = dir && join(dir, 'pkg/apis/runtime/v1/api.proto');
  if (!proto || !existsSync(proto)) throw new Error(`no api.proto in k8s.io/cri-api@${CRI_API_VERSION} (${dir})`);
  return proto;
}

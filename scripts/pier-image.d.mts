// Types of pier-image.mjs, for its unit test and the e2e tests.
export interface HostStat {
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  target?: string;
  source?: string;
}
export interface PlanEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  linkname?: string;
  source?: string;
}
export interface ImageOptions {
  name: string;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string;
  arch: string;
  os: string;
  labels: Record<string, string>;
}
export declare const PIER_PATH: string;
export declare const IMAGE_DIRS: Map<string, number>;
export declare function imageName(version: string): string;
export declare function parseLdd(text: string, what?: string): string[];
export declare function resolveInto(path: string, host: (p: string) => HostStat, into?: Map<string, HostStat>): Map<string, HostStat>;
export declare function layerPlan(files: Map<string, HostStat>, dirs?: Map<string, number>): PlanEntry[];
export declare function ociArch(nodeArch?: string): string;
export declare function imageOptions(version: string, arch?: string): ImageOptions;
export declare function hostPlan(o?: { root?: string; pier?: string; koffi?: string; nft?: string; setpriv?: string }): PlanEntry[];

// Types of oci-image.mjs, for the tests that pack images in-process.
export interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'link';
  mode: number;
  data?: Buffer;
  linkname?: string;
}
export declare function tar(entries: TarEntry[], mtime?: number): Buffer;
export declare function rootfsEntries(root: string): TarEntry[];
export declare function buildOciArchive(o: {
  rootfs?: string;
  entries?: TarEntry[];
  name: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workdir?: string;
  labels?: Record<string, string>;
  user?: string;
  exposedPorts?: string[];
  arch?: string;
  os?: string;
  created?: string;
  gzip?: boolean;
}): { archive: Buffer; digest: string };

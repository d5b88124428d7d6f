// CNI spec versions: the supported list, comparison, the VERSION reply and per-command gates.
import { CniError, ErrorCode } from './errors.ts';

/** Every spec version Pier reads configs in and prints results in, oldest first. */
export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

/** The VERSION command's reply. */
export interface VersionResult {
  cniVersion: string;
  supportedVersions: CniVersion[];
}

export function isSupportedVersion(version: unknown): version is CniVersion {
  return typeof version === 'string' && (SUPPORTED_VERSIONS as readonly string[]).includes(version);
}

function parseVersion(version: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!m) {
    throw new CniError(ErrorCode.IncompatibleVersion, `unable to parse CNI version "${version}"`);
  }
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Compares two `major.minor.patch` versions: negative, zero or positive like a sort comparator. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    if (pa[i] !== pb[i]) return pa[i] - pb[i];
  }
  return 0;
}

/** Returns the version if Pier supports it; otherwise code 1 naming what is supported. */
export function assertSupportedVersion(version: unknown): CniVersion {
  if (isSupportedVersion(version)) return version;
  throw new CniError(
    ErrorCode.IncompatibleVersion,
    'incompatible CNI versions',
    `config is ${JSON.stringify(version)}, plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`,
  );
}

/**
 * The VERSION reply. The spec echoes the caller's cniVersion; an unknown or missing one is
 * answered with the latest, so the reply never claims a format Pier cannot print.
 */
export function versionResult(cniVersion?: string): VersionResult {
  return {
    cniVersion: isSupportedVersion(cniVersion) ? cniVersion : LATEST_VERSION,
    supportedVersions: [...SUPPORTED_VERSIONS],
  };
}

/** The oldest config version that may carry each command (the ones not listed: any version). */
const MIN_VERSION_FOR: Partial<Record<string, CniVersion>> = {
  CHECK: '0.4.0',
  STATUS: '1.1.0',
  GC: '1.1.0',
};

/** Code 1 when the config's version predates the command (CHECK < 0.4.0, GC/STATUS < 1.1.0). */
export function assertCommandAllowed(command: string, configVersion: string): void {
  const min = MIN_VERSION_FOR[command];
  if (min && compareVersions(configVersion, min) < 0) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `config version does not allow ${command}`,
      `${command} needs cniVersion >= ${min}, config is "${configVersion}"`,
    );
  }
}

// CniError: the one error type that reaches the plugin boundary, carrying a CNI spec error code.

/** Error codes from the CNI spec (SPEC.md, "Error"), plus Pier's own (100+). */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  /** libcni's code for "CNI_NETNS is the plugin's own netns". */
  NetnsIsOwn: 8,
  TryAgainLater: 11,
  NotAvailable: 50,
  NotAvailableDisrupted: 51,
  /** Pier: the address pool of a range set is exhausted. */
  IpamExhausted: 100,
  /** Pier: a requested address or host port is already held by another attachment. */
  Conflict: 101,
  /** Pier: a kernel operation (netlink, sysctl, nft) failed. */
  Kernel: 102,
  /** Pier: CHECK found the attachment different from what ADD made. */
  CheckFailed: 103,
  /** Pier: a delegated plugin failed without a CNI error of its own. */
  Delegate: 104,
  /** What the Go library uses for errors that fit nowhere else. */
  Internal: 999,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A failure reported to the runtime as `{cniVersion, code, msg, details}` on stdout. */
export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
    options?: { cause?: unknown },
  ) {
    super(msg, options);
  }

  /** The spec's error object; `cniVersion` is the config's, or the latest when unknown. */
  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return this.details
      ? { cniVersion, code: this.code, msg: this.message, details: this.details }
      : { cniVersion, code: this.code, msg: this.message };
  }
}

/** Wraps anything thrown into a CniError, keeping typed ones as they are. */
export function toCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err && typeof err === 'object' && 'cniCode' in err && typeof err.cniCode === 'number') {
    const e = err as Error & { cniCode: number };
    return new CniError(e.cniCode, e.message, '', { cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(ErrorCode.Internal, msg, '', { cause: err });
}

/**
 * One error for a command that carried on past failed steps (DEL, GC): the only one as it is,
 * or every message joined, with the first one's code (the runtime acts on a code, the person
 * reading it on the messages).
 */
export function combineErrors(command: string, errors: CniError[]): CniError | undefined {
  if (errors.length <= 1) return errors[0];
  return new CniError(
    errors[0].code,
    `${command} failed in ${errors.length} steps: ${errors.map((e) => e.message).join('; ')}`,
    errors.map((e) => e.details).filter(Boolean).join('; '),
  );
}

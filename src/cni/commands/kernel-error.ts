// Turns a kernel failure (SysError from netlink) into the CniError the runtime sees.
import { SysError } from '../../netlink/libc.ts';
import { CniError, ErrorCode, toCniError } from '../errors.ts';

export function kernelError(err: unknown): CniError {
  if (err instanceof SysError) return new CniError(ErrorCode.Kernel, err.message, err.extack, { cause: err });
  return toCniError(err);
}

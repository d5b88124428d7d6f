// Prints the one JSON reply on stdout, result or error, as the Go library prints it; never a stack.
import { CniError, toCniError } from './errors.ts';
import { LATEST_VERSION } from './versions.ts';

/** The part of a stream this module needs: process.stdout, or a buffer in tests. */
export interface TextSink {
  write(chunk: string): unknown;
}

/**
 * JSON as Go's json.MarshalIndent(v, "", "    ") writes it: 4-space indent, no trailing
 * newline, and <, >, &, U+2028, U+2029 escaped (they only occur inside strings).
 */
export function serialiseJson(value: unknown): string {
  const text = JSON.stringify(value, null, 4) as string | undefined;
  if (text === undefined) throw new TypeError(`cannot serialise ${typeof value} as JSON`);
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Writes a result (or the VERSION reply) in one write. Throws before writing if it cannot serialise. */
export function writeResult(stdout: TextSink, result: unknown): void {
  const text = serialiseJson(result);
  stdout.write(text);
}

// A V8 stack frame line: "    at fn (file:1:2)" or "    at file:1:2".
const STACK_LINE = /^\s*at .*(?:\(.*\)|:\d+:\d+)\s*$/;

/** The text without stack-frame lines, in case a stack was folded into a message. */
export function stripStack(text: string): string {
  if (!text.includes('\n')) return text;
  return text
    .split('\n')
    .filter((line) => !STACK_LINE.test(line))
    .join('\n')
    .trimEnd();
}

/**
 * Writes `{cniVersion, code, msg, details?}` in one write and returns the CniError it reported,
 * so the entry point can pick the exit code. Anything thrown is reported; only its message is
 * kept, never its stack. `cniVersion` is the config's, or the latest when it is not known.
 */
export function writeError(stdout: TextSink, err: unknown, cniVersion?: string): CniError {
  const e = toCniError(err);
  const clean = new CniError(e.code, stripStack(e.message), stripStack(e.details));
  stdout.write(serialiseJson(clean.toJSON(cniVersion || LATEST_VERSION)));
  return e;
}

// Pier's log: JSON lines appended to a file (never stdout, which carries the CNI reply), size-bounded.
import { closeSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { isoTime } from '../base/iso-time.ts';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_LOG_FILE = '/var/log/pier.log';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
/** Past this size the file is renamed to `<file>.1` (replacing an older one) and started afresh. */
export const MAX_LOG_BYTES = 5 * 1024 * 1024;

export type LogFields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (e.g. the command and container ID). */
  child(fields: LogFields): Logger;
}

export interface LogOptions {
  file: string;
  level: LogLevel;
  maxBytes?: number;
  /** Fields on every line. */
  fields?: LogFields;
}

function isLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Where and how much to log: PIER_LOG_FILE / PIER_LOG_LEVEL win (a test or an admin debugging
 * one call), then the config's logFile / logLevel, then the defaults. Invalid values are skipped.
 */
export function resolveLogOptions(
  env: Record<string, string | undefined>,
  conf?: { logFile?: string; logLevel?: string },
): LogOptions {
  const file = env.PIER_LOG_FILE || conf?.logFile || DEFAULT_LOG_FILE;
  const level = [env.PIER_LOG_LEVEL?.toLowerCase(), conf?.logLevel].find(isLevel) ?? DEFAULT_LOG_LEVEL;
  return { file, level };
}

// Errors keep their CNI code, details and stack in the log (the log is where stacks belong).
// JSON.stringify calls a value's toJSON(key) before the replacer sees it (CniError has one, for
// stdout), so the original is read from the holder.
function replacer(this: Record<string, unknown>, key: string, converted: unknown): unknown {
  const value = key in this ? this[key] : converted;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) {
    const e = value as Error & { code?: unknown; details?: unknown; cause?: unknown };
    return { name: e.name, message: e.message, code: e.code, details: e.details, stack: e.stack, cause: e.cause };
  }
  return converted;
}

function formatLine(level: LogLevel, msg: string, fields: LogFields): string {
  const head = { time: isoTime(Date.now()), level, pid: process.pid, msg };
  try {
    return `${JSON.stringify({ ...head, ...fields, ...head }, replacer)}\n`;
  } catch {
    // A cycle in the fields: keep the message rather than lose the line.
    return `${JSON.stringify({ ...head, fieldsError: 'fields could not be serialised' })}\n`;
  }
}

/**
 * Appends one line; never throws. Concurrent plugin processes share the file: O_APPEND keeps
 * their lines whole, and at worst two of them rotate at once and one older chunk is lost.
 */
function appendLine(file: string, line: string, maxBytes: number): void {
  try {
    try {
      if (statSync(file).size >= maxBytes) renameSync(file, `${file}.1`);
    } catch {
      // No file yet, or it cannot be rotated: append anyway.
    }
    const fd = openSync(file, 'a', 0o600);
    try {
      writeSync(fd, line);
    } finally {
      closeSync(fd);
    }
  } catch {
    // A log that cannot be written must never fail a CNI command.
  }
}

/** A logger writing JSON lines at `options.level` and above to `options.file`. */
export function createLogger(options: LogOptions): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level);
  const maxBytes = options.maxBytes ?? MAX_LOG_BYTES;
  const base = options.fields ?? {};
  const log = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) > threshold) return;
    appendLine(options.file, formatLine(level, msg, { ...base, ...fields }), maxBytes);
  };
  return {
    error: log('error'),
    warn: log('warn'),
    info: log('info'),
    debug: log('debug'),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

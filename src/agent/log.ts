// The agent's log: one JSON object per line on stderr (what kubectl logs shows for a DaemonSet
// pod), with a time, a level, a message and fields. Plugin mode never logs here: only the
// long-running agent does.

export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** One log line: `{"time":...,"level":...,"msg":...,...fields}` and a newline. */
export function formatLine(time: Date, level: Level, msg: string, fields: Record<string, unknown> = {}): string {
  const out: Record<string, unknown> = { time: time.toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields)) {
    if (k in out || v === undefined) continue;
    out[k] = v instanceof Error ? v.message : v;
  }
  return `${JSON.stringify(out)}\n`;
}

/** A logger writing lines at `min` and above through `write`. */
export function jsonLogger(write: (line: string) => void, min: Level = 'info', now: () => Date = () => new Date()): Logger {
  const floor = LEVELS.indexOf(min);
  const at = (level: Level) => (msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(level) >= floor) write(formatLine(now(), level, msg, fields));
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

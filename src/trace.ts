// PIER_TRACE=1: phase timings on stderr, in ms since the process started (performance.now()),
// for profiling start-up and the commands. Off by default and then costs one branch per mark.
let marks: [string, number][] | undefined;

/** Turns tracing on for this process (main() calls it when PIER_TRACE is set). */
export function enableTrace(): void {
  marks = [];
}

/** Records that `label` was reached. */
export function mark(label: string): void {
  marks?.push([label, performance.now()]);
}

/** The recorded marks as text lines (empty when tracing is off). */
export function traceReport(): string {
  if (!marks) return '';
  let prev = 0;
  return marks.map(([l, t]) => {
    const line = `pier trace ${t.toFixed(2).padStart(8)} ms  (+${(t - prev).toFixed(2)})  ${l}\n`;
    prev = t;
    return line;
  }).join('');
}

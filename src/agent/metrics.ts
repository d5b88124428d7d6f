// A small Prometheus registry: counters, gauges and one histogram, rendered by hand in the text
// exposition format (version 0.0.4). No client library: the agent exports a dozen series.

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  series: Map<string, { labels: Labels; value: number }>;
  buckets?: number[];
  histo?: Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>;
}

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** `\`, `"` and newlines escaped, as the text format wants label values. */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

/** A number as the text format writes it. */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

export class Registry {
  private readonly families = new Map<string, Family>();

  private family(name: string, help: string, type: Family['type']): Family {
    let f = this.families.get(name);
    if (!f) {
      f = { name, help, type, series: new Map() };
      this.families.set(name, f);
    }
    if (f.type !== type) throw new Error(`metric ${name} is a ${f.type}, not a ${type}`);
    return f;
  }

  /** Declares a counter or gauge so that it renders (with no series) before the first value. */
  declare(name: string, help: string, type: 'counter' | 'gauge'): void {
    this.family(name, help, type);
  }

  inc(name: string, help: string, labels: Labels = {}, by = 1): void {
    const f = this.family(name, help, 'counter');
    const k = keyOf(labels);
    const s = f.series.get(k) ?? { labels, value: 0 };
    s.value += by;
    f.series.set(k, s);
  }

  set(name: string, help: string, value: number, labels: Labels = {}): void {
    this.family(name, help, 'gauge').series.set(keyOf(labels), { labels, value });
  }

  /** Replaces every series of a gauge (for gauges by label whose label values come and go). */
  setAll(name: string, help: string, values: Array<{ labels: Labels; value: number }>): void {
    const f = this.family(name, help, 'gauge');
    f.series.clear();
    for (const v of values) f.series.set(keyOf(v.labels), v);
  }

  observe(name: string, help: string, buckets: number[], value: number, labels: Labels = {}): void {
    const f = this.family(name, help, 'histogram');
    f.buckets ??= [...buckets].sort((a, b) => a - b);
    f.histo ??= new Map();
    const k = keyOf(labels);
    const h = f.histo.get(k) ?? { labels, counts: f.buckets.map(() => 0), sum: 0, count: 0 };
    f.buckets.forEach((b, i) => {
      if (value <= b) h.counts[i]++;
    });
    h.sum += value;
    h.count++;
    f.histo.set(k, h);
  }

  /** The value of one counter or gauge series (tests, the state file). */
  value(name: string, labels: Labels = {}): number | undefined {
    return this.families.get(name)?.series.get(keyOf(labels))?.value;
  }

  /** The text exposition: families by name, series by labels. */
  render(): string {
    const lines: string[] = [];
    for (const f of [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
      lines.push(`# TYPE ${f.name} ${f.type}`);
      if (f.type === 'histogram') {
        for (const [, h] of [...(f.histo ?? new Map())].sort(([a], [b]) => (a < b ? -1 : 1))) {
          f.buckets!.forEach((b, i) => lines.push(`${f.name}_bucket${labelText(h.labels, ['le', num(b)])} ${h.counts[i]}`));
          lines.push(`${f.name}_bucket${labelText(h.labels, ['le', '+Inf'])} ${h.count}`);
          lines.push(`${f.name}_sum${labelText(h.labels)} ${num(h.sum)}`);
          lines.push(`${f.name}_count${labelText(h.labels)} ${h.count}`);
        }
        continue;
      }
      for (const [, s] of [...f.series].sort(([a], [b]) => (a < b ? -1 : 1))) lines.push(`${f.name}${labelText(s.labels)} ${num(s.value)}`);
    }
    return `${lines.join('\n')}\n`;
  }
}

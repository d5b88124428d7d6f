// Case-insensitive JSON keys, as Go's encoding/json matches them: rename keys to one spelling.

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The field names of one JSON object type, and the types of the fields that hold objects (or
 * lists of them, at any depth): Go's decoder matches names case-insensitively wherever it
 * decodes into a struct. Built once, at module load (so in the startup snapshot).
 */
export interface KeyShape {
  /** Lowercase name to canonical name. */
  readonly names: ReadonlyMap<string, string>;
  /** Canonical name to the shape of its value. */
  readonly fields: Readonly<Record<string, KeyShape>>;
}

export function keyShape(names: readonly string[], fields: Record<string, KeyShape> = {}): KeyShape {
  return { names: new Map(names.map((k) => [k.toLowerCase(), k])), fields };
}

/** Defines `name` on `out` as a plain data key, even for a "__proto__" key. */
function put(out: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A copy of `value` with every key of `shape` renamed to its canonical spelling, ignoring case,
 * at every depth the shape describes; keys it does not know are kept as they are (maps whose
 * keys are data, unknown fields). As in Go, when two keys fold together the later one in the
 * document wins, and a JSON null reads as an absent field. An array is folded element by
 * element with the same shape (so `[[{...}]]` and `[{...}]` both work); anything else is
 * returned unchanged.
 */
export function foldKeys(value: unknown, shape: KeyShape): unknown {
  if (Array.isArray(value)) return value.map((item) => foldKeys(item, shape));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const v = value[key];
    const known = shape.names.get(key.toLowerCase());
    const name = known ?? key;
    if (v === null && known) {
      delete out[name];
      continue;
    }
    // Own fields only: a key named "toString" or "constructor" must not find Object's.
    const inner = Object.hasOwn(shape.fields, name) ? shape.fields[name] : undefined;
    put(out, name, inner && v !== null && typeof v === 'object' ? foldKeys(v, inner) : v);
  }
  return out;
}

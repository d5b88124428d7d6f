// Case-insensitive JSON keys, as Go's encoding/json matches them: rename keys to one spelling.

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A copy of `value` with every key that equals one of `canonical` ignoring case renamed to that
 * spelling; other keys are kept as they are. As in Go, when two keys fold together the later one
 * in the document wins. Anything but a plain object is returned unchanged.
 */
export function foldKeys(value: unknown, canonical: readonly string[]): unknown {
  if (!isPlainObject(value)) return value;
  const byLower = new Map(canonical.map((k) => [k.toLowerCase(), k]));
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = byLower.get(key.toLowerCase()) ?? key;
    // defineProperty, not assignment: a "__proto__" key must stay a plain data key.
    Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** foldKeys over each element of an array; anything else is returned unchanged. */
export function foldEach(value: unknown, canonical: readonly string[]): unknown {
  return Array.isArray(value) ? value.map((item) => foldKeys(item, canonical)) : value;
}

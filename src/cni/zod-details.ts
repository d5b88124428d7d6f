// Turns zod issues into a CniError's details: each issue's path, what was wrong and the bad value.
import type { $ZodIssue } from 'zod/v4/core';

function pathText(path: readonly PropertyKey[], prefix: string): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out || '(root)';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): { found: boolean; value?: unknown } {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, key)) return { found: false };
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return { found: true, value: cur };
}

function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * "mtu: must be between 68 and 65535 (got 70000); name: ..." for every issue. The bad value is
 * looked up in `input` (the object given to zod), so it is the value as the runtime sent it.
 */
export function describeIssues(issues: readonly $ZodIssue[], input: unknown, prefix = ''): string {
  return issues
    .map((issue) => {
      const at = valueAt(input, issue.path);
      const where = pathText(issue.path, prefix);
      if (!at.found && issue.code === 'invalid_type') return `${where}: is required (${issue.message})`;
      const got = at.found ? ` (got ${show(at.value)})` : '';
      return `${where}: ${issue.message}${got}`;
    })
    .join('; ');
}

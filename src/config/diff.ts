/** What differs between two plain (JSON-like) configs, field by field: pure; a resume refusal names these changes. */

export interface ConfigChange {
  /** Dotted field path, e.g. `train.epochs`, `schedule.milestones`. */
  path: string;
  before: unknown;
  after: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Leaf-level differences between two plain (JSON-like) configs. Objects are compared key by key; arrays and
 * scalars as wholes (a changed milestone list is one change). A key that is undefined on one side and absent on
 * the other is no change (JSON drops undefined).
 */
export function diffConfig(before: unknown, after: unknown, prefix = ''): ConfigChange[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffConfig(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [{ path: prefix || '(root)', before, after }];
}

const show = (v: unknown): string => (v === undefined ? '(unset)' : JSON.stringify(v));

/** `train.epochs: 5 → 8; lr.base: 0.1 → 0.2` */
export function formatChanges(changes: ConfigChange[]): string {
  return changes.map((c) => `${c.path}: ${show(c.before)} → ${show(c.after)}`).join('; ');
}

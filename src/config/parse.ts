import type { z } from 'zod';
import { ConfigError } from '../errors';

/** The first zod issue as a one-line ConfigError naming the field: `prefix.a.b[2]: message`. */
export function zodToConfigError(error: z.ZodError, prefix = ''): ConfigError {
  const issue = error.issues[0];
  let path = prefix;
  for (const p of issue.path) path += typeof p === 'number' ? `[${p}]` : `${path ? '.' : ''}${String(p)}`;
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') msg = `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  return new ConfigError(path || '(root)', msg);
}

/** Parses with a zod schema; bad input throws a ConfigError with the field path. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, prefix: string): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw zodToConfigError(r.error, prefix);
}

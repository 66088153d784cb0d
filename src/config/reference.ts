import { z } from 'zod';
import { JobSchema } from './schema';

type Json = Record<string, any>;

function typeOf(s: Json): string {
  if (s.enum) return s.enum.map((v: unknown) => JSON.stringify(v)).join(' \\| ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.oneOf || s.anyOf) return (s.oneOf ?? s.anyOf).map(typeOf).join(' \\| ');
  if (s.type === 'array') return s.prefixItems ? `[${s.prefixItems.map(typeOf).join(', ')}]` : `${typeOf(s.items ?? {})}[]`;
  if (Array.isArray(s.type)) return s.type.join(' \\| ');
  return s.type ?? 'any';
}

function range(s: Json): string {
  const lo = s.minimum !== undefined ? `≥ ${s.minimum}` : s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '';
  const max = s.maximum !== undefined && s.maximum < 1e15 ? `≤ ${s.maximum}` : s.exclusiveMaximum !== undefined ? `< ${s.exclusiveMaximum}` : '';
  return [lo, max].filter(Boolean).join(', ');
}

/**
 * The job config reference as a markdown table, generated from the zod schema itself so the
 * documentation cannot drift from what is validated.
 */
export function configReference(): string {
  const root = z.toJSONSchema(JobSchema, { io: 'input', unrepresentable: 'any' }) as Json;
  const rows: string[] = ['| field | type | default | range |', '|---|---|---|---|'];
  const walk = (s: Json, path: string) => {
    const variants: Json[] | undefined = s.oneOf ?? s.anyOf;
    const tag = variants && ['strategy', 'type'].find((t) => variants.every((v) => v.type === 'object' && v.properties?.[t]?.const !== undefined));
    if (variants && tag) {
      for (const v of variants) walk(v, `${path} (${tag} ${v.properties[tag].const})`);
      return;
    }
    if (s.type === 'object' && s.properties) {
      for (const [k, v] of Object.entries<Json>(s.properties)) {
        const p = path ? `${path}.${k}` : k;
        if (v.type === 'object' && v.properties) walk(v, p);
        else if ((v.oneOf ?? v.anyOf)?.some((x: Json) => x.type === 'object' && x.properties)) walk(v, p);
        else rows.push(`| \`${p}\` | ${typeOf(v)} | ${v.default !== undefined ? `\`${JSON.stringify(v.default)}\`` : ''} | ${range(v)} |`);
      }
    }
  };
  walk(root, '');
  return rows.join('\n');
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../errors';
import { notRegularFile } from '../io/path-kind';
import { parseOrThrow } from '../optim/schema';
import { applyRecipe } from './recipes';
import { JobSchema, type Job, type JobInput } from './schema';

/** Job files are a few hundred bytes; a larger one is a mistake (a data file passed as --config) or hostile. */
export const MAX_JOB_FILE_BYTES = 1024 * 1024;

/** Reads a YAML or JSON job file into plain data (not yet validated). */
export function readJobFile(file: string): Record<string, unknown> {
  let text: string;
  // before any open: a FIFO would block the read and /dev/zero would never end
  const kind = notRegularFile(file, 'job file');
  if (kind) throw new ConfigError(file, kind);
  try {
    const size = fs.statSync(file).size;
    if (size > MAX_JOB_FILE_BYTES) throw new ConfigError(file, `config file is ${size} bytes, over the ${MAX_JOB_FILE_BYTES}-byte limit`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(file, 'config file not found');
  }
  try {
    const data = /\.json$/i.test(file) ? JSON.parse(text) : YAML.parse(text, { maxAliasCount: 100 });
    if (data === null || data === undefined) return {};
    if (typeof data !== 'object' || Array.isArray(data)) throw new Error('the top level must be a mapping');
    return data as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(file, `cannot parse: ${(e as Error).message.split('\n')[0]}`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep-merges `over` into `base`: objects merge key by key, everything else (arrays too) replaces. */
export function mergeConfig(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeConfig(out[k] as Record<string, unknown>, v) : v;
  }
  return out;
}

/**
 * The job a run executes: the recipe's values (if one is named), the file (if any), then CLI flags or API options
 * on top, validated. `log` hears one line per recipe value the job overrides.
 * Relative paths in a file are read relative to the working directory, like CLI flags.
 */
export function resolveJob(input: JobInput | Record<string, unknown> = {}, configFile?: string, log?: (line: string) => void): Job {
  const fromFile = configFile ? readJobFile(configFile) : {};
  const { config: merged, notes } = applyRecipe(mergeConfig(fromFile, input as Record<string, unknown>));
  for (const n of notes) log?.(n);
  const prefix = configFile ? path.basename(configFile) : 'config';
  return parseOrThrow(JobSchema, merged, prefix);
}

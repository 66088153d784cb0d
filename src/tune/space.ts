/**
 * Search spaces: validation, log-uniform random sampling, 3x grids, and the mapping of a trial's values onto a
 * job config. Pure functions; the runner (search.ts) drives the Trainer with what they produce.
 */
import { ConfigError } from '../errors';
import { Rng } from '../data/rng';
import type { Range, SearchSpace } from './schema';

/** The searched hyper-parameters, in a fixed order (CSV columns, plots). */
export const PARAMS = ['lr', 'weightDecay', 'momentum', 'factor'] as const;
export type ParamName = (typeof PARAMS)[number];
export type TrialParams = Partial<Record<ParamName, number>>;

/** Which space entry drives each parameter (momentum is searched as 1 − momentum, on a log scale). */
const SOURCE: Record<ParamName, keyof SearchSpace> = { lr: 'lr', weightDecay: 'weightDecay', momentum: 'oneMinusMomentum', factor: 'factor' };

/** min ≤ max, finite, and > 0 on a log scale; errors name the field. */
export function validateSpace(space: SearchSpace, prefix = 'tune.search.space'): void {
  for (const [name, r] of Object.entries(space) as Array<[string, Range | null]>) {
    if (r === null) continue;
    const at = `${prefix}.${name}`;
    if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) throw new ConfigError(at, `bounds must be finite numbers, got [${r.min}, ${r.max}]`);
    if (r.min > r.max) throw new ConfigError(`${at}.min`, `min ${r.min} is greater than max ${r.max}`);
    if (r.scale === 'log' && !(r.min > 0)) throw new ConfigError(`${at}.min`, `a log-scale range needs bounds > 0, got min ${r.min}`);
  }
  if (space.factor && space.factor.min < 1) {
    throw new ConfigError(`${prefix}.factor.min`, `factor is the spread between consecutive groups (>= 1), got ${space.factor.min}`);
  }
  if (space.oneMinusMomentum && space.oneMinusMomentum.max >= 1) {
    throw new ConfigError(`${prefix}.oneMinusMomentum.max`, `1 − momentum must stay below 1, got ${space.oneMinusMomentum.max}`);
  }
}

/** One draw: log-uniform (uniform in log10) or uniform. */
export function sampleRange(r: Range, u: number): number {
  if (r.min === r.max) return r.min;
  if (r.scale === 'log') return 10 ** (Math.log10(r.min) + u * (Math.log10(r.max) - Math.log10(r.min)));
  return r.min + u * (r.max - r.min);
}

function toParam(name: ParamName, v: number): number {
  return name === 'momentum' ? 1 - v : v;
}

/**
 * `n` random trials. Trial i depends only on (seed, i), never on n: asking for more trials later extends the
 * list without changing the ones already run (what makes resuming and sharding across workers safe).
 */
export function randomTrials(space: SearchSpace, n: number, seed: number): TrialParams[] {
  validateSpace(space);
  return Array.from({ length: n }, (_, i) => {
    const rng = new Rng((seed * 7919 + i * 104729 + 1) >>> 0);
    const t: TrialParams = {};
    for (const p of PARAMS) {
      const r = space[SOURCE[p]];
      const u = rng.next();
      if (r) t[p] = toParam(p, sampleRange(r, u));
    }
    return t;
  });
}

/** Grid values of one range: 1, 3, 10, 30, ... × 10^k within [min, max] on a log scale; 5 even points on a linear one. */
export function gridValues(r: Range): number[] {
  if (r.min === r.max) return [r.min];
  if (r.scale === 'linear') return Array.from({ length: 5 }, (_, i) => r.min + (i * (r.max - r.min)) / 4);
  const out: number[] = [];
  const tol = 1e-9;
  for (let e = Math.floor(Math.log10(r.min)) - 1; e <= Math.ceil(Math.log10(r.max)); e++) {
    for (const m of [1, 3]) {
      const v = +(m * 10 ** e).toPrecision(12);
      if (v >= r.min * (1 - tol) && v <= r.max * (1 + tol)) out.push(v);
    }
  }
  return out;
}

/** The full grid (cartesian product, lr varying slowest). */
export function gridTrials(space: SearchSpace): TrialParams[] {
  validateSpace(space);
  let out: TrialParams[] = [{}];
  for (const p of PARAMS) {
    const r = space[SOURCE[p]];
    if (!r) continue;
    const vals = gridValues(r).map((v) => toParam(p, v));
    out = out.flatMap((t) => vals.map((v) => ({ ...t, [p]: v })));
  }
  return out;
}

/**
 * A trial's values as job-config overrides. `lr` is the top group's EFFECTIVE rate at the run's batch (the unit
 * lr-find reports, and the unit the default range 1e-5..1e-1 is meant in); the config carries reference rates
 * (at lr.baseBatch), so it becomes groups.top = lr.base = lr / lrScale, as `--lr` sets them. weightDecay →
 * optimizer.weightDecay, momentum → optimizer.momentum, factor → groups.factor.
 */
export function trialToJob(t: TrialParams, lrScale = 1): Record<string, unknown> {
  const job: Record<string, Record<string, unknown>> = {};
  const set = (section: string, key: string, v: number | undefined) => {
    if (v !== undefined) job[section] = { ...(job[section] ?? {}), [key]: v };
  };
  const ref = t.lr === undefined ? undefined : t.lr / lrScale;
  set('groups', 'top', ref);
  set('lr', 'base', ref);
  set('groups', 'factor', t.factor);
  set('optimizer', 'weightDecay', t.weightDecay);
  set('optimizer', 'momentum', t.momentum);
  return job;
}

/** A short stable label for a trial's values (CSV, logs). */
export function describeTrial(t: TrialParams): string {
  return PARAMS.filter((p) => t[p] !== undefined)
    .map((p) => `${p}=${(t[p] as number).toPrecision(3)}`)
    .join(' ');
}

/**
 * The linear scaling rule (Goyal et al. 2017) and the warmup it implies, resolved to plain numbers for the
 * schedule and for `layertune plan`.
 */
import { ConfigError } from '../errors';
import type { LrScheduleConfig, WarmupConfig } from './schema';

/** What the run looks like, as far as the learning rate is concerned. */
export interface RunShape {
  /** Samples per forward pass on one worker. */
  batch: number;
  /** Forward passes whose gradients are summed into one optimizer step (default 1). */
  accumulate?: number;
  /** Data-parallel workers, each with `batch` samples (default 1). */
  workers?: number;
  /** Optimizer steps per epoch, i.e. after accumulation. */
  stepsPerEpoch: number;
  epochs: number;
}

/** Gradual warmup length Goyal et al. use when scaling raises the rate. */
export const DEFAULT_WARMUP_EPOCHS = 5;

export interface ResolvedWarmup {
  type: 'linear' | 'constant' | 'none';
  /** Warmup length in optimizer steps; the peak is reached at this step. */
  steps: number;
  /** Rate at step 0 as a fraction of the scheduled rate at the end of warmup. */
  startFactor: number;
  /** Where the warmup came from: the config, the linear scaling rule's default, or nowhere. */
  source: 'config' | 'scaling-default' | 'none';
}

export interface ResolvedLr {
  base: number;
  baseBatch: number;
  scaling: 'linear' | 'sqrt' | 'none';
  /** batch × accumulate × workers: what one optimizer step averages over. */
  effectiveBatch: number;
  /** peak / base */
  scale: number;
  /** The rate at full strength, on the reference scale of `base`. */
  peak: number;
  warmup: ResolvedWarmup;
  stepsPerEpoch: number;
  epochs: number;
  totalSteps: number;
}

function positiveInt(value: number, path: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError(path, `must be a positive integer, got ${value}`);
  return value;
}

/** scale = effectiveBatch/baseBatch (linear), its square root (sqrt), or 1 (none). */
export function scaleFactor(scaling: 'linear' | 'sqrt' | 'none', effectiveBatch: number, baseBatch: number): number {
  if (scaling === 'none') return 1;
  const ratio = effectiveBatch / baseBatch;
  return scaling === 'linear' ? ratio : Math.sqrt(ratio);
}

/**
 * Resolve the peak rate and the warmup. Without a `warmup` entry, a gradual 5-epoch warmup from the unscaled
 * base is added only when scaling raises the rate (effective batch > baseBatch); below baseBatch there is none.
 */
export function resolveLr(cfg: LrScheduleConfig, run: RunShape): ResolvedLr {
  const batch = positiveInt(run.batch, 'batch');
  const accumulate = positiveInt(run.accumulate ?? 1, 'accumulate');
  const workers = positiveInt(run.workers ?? 1, 'workers');
  const stepsPerEpoch = positiveInt(run.stepsPerEpoch, 'stepsPerEpoch');
  const epochs = positiveInt(run.epochs, 'epochs');
  const totalSteps = stepsPerEpoch * epochs;

  const { base, baseBatch, scaling } = cfg.lr;
  const effectiveBatch = batch * accumulate * workers;
  const scale = scaleFactor(scaling, effectiveBatch, baseBatch);
  const warmup =
    cfg.schedule.type === 'onecycle'
      ? oneCycleWarmup(cfg.warmup)
      : resolveWarmup(cfg.warmup, scale, stepsPerEpoch, totalSteps, { scaling, effectiveBatch, baseBatch });
  return { base, baseBatch, scaling, effectiveBatch, scale, peak: base * scale, warmup, stepsPerEpoch, epochs, totalSteps };
}

/** One-cycle rises from peak/divFactor on its own; a second warmup in front of it would be a different schedule. */
function oneCycleWarmup(cfg: WarmupConfig | undefined): ResolvedWarmup {
  if (cfg !== undefined && cfg.type !== 'none') {
    throw new ConfigError('warmup', 'a onecycle schedule warms up by itself (schedule.pctStart); remove warmup or set warmup.type: none');
  }
  return { type: 'none', steps: 0, startFactor: 1, source: cfg ? 'config' : 'none' };
}

function resolveWarmup(
  cfg: WarmupConfig | undefined,
  scale: number,
  stepsPerEpoch: number,
  totalSteps: number,
  why: { scaling: string; effectiveBatch: number; baseBatch: number },
): ResolvedWarmup {
  const startDefault = scale > 1 ? 1 / scale : 0.1;
  if (cfg === undefined) {
    if (why.scaling === 'none' || why.effectiveBatch <= why.baseBatch) {
      return { type: 'none', steps: 0, startFactor: 1, source: 'none' };
    }
    const steps = DEFAULT_WARMUP_EPOCHS * stepsPerEpoch;
    if (steps >= totalSteps) {
      throw new ConfigError(
        'warmup',
        `the default ${DEFAULT_WARMUP_EPOCHS}-epoch warmup for effective batch ${why.effectiveBatch} > baseBatch ` +
          `${why.baseBatch} (${steps} steps) does not fit in the ${totalSteps}-step run; set warmup.epochs or warmup.type: none`,
      );
    }
    return { type: 'linear', steps, startFactor: 1 / scale, source: 'scaling-default' };
  }
  if (cfg.type === 'none') return { type: 'none', steps: 0, startFactor: 1, source: 'config' };
  const field = cfg.steps !== undefined ? 'warmup.steps' : 'warmup.epochs';
  const steps = cfg.steps ?? Math.round((cfg.epochs as number) * stepsPerEpoch);
  if (steps < 1) throw new ConfigError(field, `rounds to ${steps} steps at ${stepsPerEpoch} steps per epoch`);
  if (steps >= totalSteps) {
    throw new ConfigError(field, `warmup of ${steps} steps must be shorter than the run (${totalSteps} steps)`);
  }
  return { type: cfg.type, steps, startFactor: cfg.startFactor ?? startDefault, source: 'config' };
}

/**
 * warmup ∘ base schedule, resolved against one run into a pure factor(step, epoch).
 * The factor multiplies the *configured* rates (the ones meant at baseBatch): it includes the linear-scaling
 * scale, so every group's rate is `configuredRate × factor` and group ratios hold.
 */
import { baseShape, type BaseShape } from './base';
import { resolveLr, type ResolvedLr, type RunShape } from './scaling';
import type { LrScheduleConfig, PlateauConfig } from './schema';

export interface ResolvedSchedule {
  lr: ResolvedLr;
  /** Pure: the multiplier for the configured rates at a global optimizer step (from 0) in an epoch (from 0). */
  factor(step: number, epoch: number): number;
  /** Present when a reduce-on-plateau stage is configured; its multiplier composes with `factor`. */
  plateau?: PlateauConfig;
  /** The config it was resolved from, for checkpoints and `plan`. */
  config: LrScheduleConfig;
}

/** Build the pure warmup ∘ base factor. Throws ConfigError for settings that do not fit the run. */
export function resolveSchedule(config: LrScheduleConfig, run: RunShape): ResolvedSchedule {
  const lr = resolveLr(config, run);
  const shape = baseShape(config.schedule, { epochs: lr.epochs, totalSteps: lr.totalSteps }, lr.peak);
  const factor = composeWarmup(shape, lr);
  return { lr, factor, plateau: config.plateau, config };
}

function shapeAt(shape: BaseShape, step: number, epoch: number): number {
  return shape.at(shape.per === 'step' ? step : epoch);
}

function composeWarmup(shape: BaseShape, lr: ResolvedLr): (step: number, epoch: number) => number {
  const { scale } = lr;
  const { type, steps: w, startFactor } = lr.warmup;
  if (type === 'none' || w === 0) return (step, epoch) => scale * shapeAt(shape, step, epoch);
  // Warmup climbs to the rate the schedule has where warmup ends, so the curve is continuous there.
  const target = shapeAt(shape, w, Math.floor(w / lr.stepsPerEpoch));
  if (type === 'constant') {
    return (step, epoch) => (step < w ? scale * target * startFactor : scale * shapeAt(shape, step, epoch));
  }
  // Gradual: rises by the same amount every step (Goyal et al. 2017, §2.2).
  return (step, epoch) => (step < w ? scale * target * (startFactor + ((1 - startFactor) * step) / w) : scale * shapeAt(shape, step, epoch));
}

export interface PlanPoint {
  label: 'start' | 'warmupEnd' | 'last';
  step: number;
  epoch: number;
  factor: number;
  /** factor × lr.base: the reference rate at that step. */
  lr: number;
}

/**
 * The factor at step 0, at the end of warmup (the first step at full rate, when there is a warmup) and at the
 * last step, for `layertune plan`. The plateau stage is left out: it depends on metrics not yet seen.
 */
export function planPoints(resolved: ResolvedSchedule, shape: { totalSteps: number; stepsPerEpoch: number } = resolved.lr): PlanPoint[] {
  const at = (label: PlanPoint['label'], step: number): PlanPoint => {
    const epoch = Math.floor(step / shape.stepsPerEpoch);
    const factor = resolved.factor(step, epoch);
    return { label, step, epoch, factor, lr: factor * resolved.lr.base };
  };
  const points = [at('start', 0)];
  const w = resolved.lr.warmup.steps;
  if (w > 0 && w < shape.totalSteps) points.push(at('warmupEnd', w));
  points.push(at('last', shape.totalSteps - 1));
  return points;
}

/**
 * Rules of thumb for weight decay as functions: the lr/wd distance check (a group's rate and decay two to three
 * orders of magnitude apart), `--wd auto` (λ from the data loss and the penalty at the start), and a weight-decay
 * schedule built from the same schedule stages as the learning rate.
 * Pure where they can be; the parts that touch a network take what prepare() built.
 */
import * as tf from '@tensorflow/tfjs';
import type { Prepared } from '../job';
import { ConfigError } from '../errors';
import { parseOrThrow } from '../optim/schema';
import type { DecayMode } from '../optim/types';
import { WdScheduleSchema, type WdScheduleInput } from './schema';
import { resolveSchedule } from '../schedules/resolve';
import type { RunShape } from '../schedules/scaling';
import { CALLBACK_ORDER } from '../train/callbacks';
import { ParamScheduler, scaled, type ScheduledOptimizer } from '../train/param-scheduler';

// ---------------------------------------------------------------------------------------------------------------
// lr / wd: "two to three orders of magnitude apart"

export interface RateRow {
  name: string;
  lr: number;
  weightDecay: number;
}

export interface RuleWarning {
  group: string;
  ratio: number;
  message: string;
}

/**
 * Groups whose learning rate and weight decay are not 10…10⁴ apart (lr/wd outside [low, high]). Groups without
 * decay (wd 0, e.g. biases and norm parameters) or without a rate (frozen) are not judged. Pass the rates the
 * optimizer will really apply (effective, after batch scaling): the rule is about lr·wd, the shrink per step.
 */
export function lrWdWarnings(rows: RateRow[], low = 10, high = 1e4): RuleWarning[] {
  const out: RuleWarning[] = [];
  for (const g of rows) {
    if (!(g.weightDecay > 0) || !(g.lr > 0)) continue;
    const ratio = g.lr / g.weightDecay;
    if (ratio >= low && ratio <= high) continue;
    const fix = ratio < low ? `lower weight decay to <= ${(g.lr / low).toExponential(1)}` : `raise weight decay to >= ${(g.lr / high).toExponential(1)}`;
    out.push({
      group: g.name,
      ratio,
      message: `group ${g.name}: lr ${g.lr.toExponential(2)} / weight decay ${g.weightDecay.toExponential(2)} = ${ratio.toPrecision(3)}, outside ${low}…${high.toExponential(0)} (rule of thumb: 2-3 orders of magnitude apart); ${fix}`,
    });
  }
  return out;
}

/** The check on a prepared job, at the schedule's peak effective rates. */
export function planLrWdWarnings(p: Prepared): RuleWarning[] {
  const scale = p.schedule.resolved.lr.scale;
  return lrWdWarnings(p.plan.groups.map((g) => ({ name: g.name, lr: g.lr * scale, weightDecay: g.weightDecay })));
}

// ---------------------------------------------------------------------------------------------------------------
// --wd auto

/**
 * The penalty the optimizer's decay corresponds to, per unit of λ, with each variable's decay multiplier m_v:
 * coupled/decoupled (L2, g += λ·m·w) ⇒ Ω = ½ Σ m_v ‖w_v‖²;  l1 (g += λ·m·sign w) ⇒ Ω = Σ m_v ‖w_v‖₁.
 */
export function penalty(vars: Array<{ w: tf.Tensor; mult: number; mode: DecayMode }>): number {
  if (!vars.length) return 0;
  const t = tf.tidy(() =>
    tf.addN(vars.map(({ w, mult, mode }) => (mode === 'l1' ? tf.mul(tf.sum(tf.abs(w)), mult) : tf.mul(tf.sum(tf.square(w)), 0.5 * mult)))),
  );
  const v = t.dataSync()[0];
  t.dispose();
  return v;
}

/** λ with λ·Ω = fraction × data loss. */
export function wdForFraction(dataLoss: number, omega: number, fraction: number): number {
  if (!(omega > 0)) throw new ConfigError('optimizer.weightDecay', 'auto: no decayed weights (Ω = 0), nothing to choose λ for');
  if (!(dataLoss > 0) || !Number.isFinite(dataLoss)) throw new ConfigError('optimizer.weightDecay', `auto: the data loss at the start is ${dataLoss}`);
  return (fraction * dataLoss) / omega;
}

export interface WdAutoResult {
  dataLoss: number;
  omega: number;
  fraction: number;
  /** The base weight decay to set (optimizer.weightDecay); groups apply their decay multipliers to it. */
  lambda: number;
  images: number;
  variables: number;
  lines: string[];
}

/**
 * `--wd auto`: measure the data loss on up to `maxImages` training images (inference mode, as at the start of
 * training) and Ω(w) of the decayed variables, and pick λ so that λ·Ω = fraction × loss. Each variable's decay
 * multiplier is its group's decay relative to optimizer.weightDecay, or, when that is 0, the role multipliers
 * (kernels 1, biases groups.biasDecayMult, norm groups.normDecayMult).
 */
export async function wdAuto(p: Prepared, opts: { fraction?: number; maxImages?: number } = {}): Promise<WdAutoResult> {
  const fraction = opts.fraction ?? 0.1;
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError('tune.wdAutoFraction', `must be in (0, 1), got ${fraction}`);
  const base = p.job.optimizer.weightDecay;
  const g = p.job.groups;
  const roleMult = { kernel: 1, bias: g.biasDecayMult, norm: g.normDecayMult };
  const vars: Array<{ w: tf.Tensor; mult: number; mode: DecayMode }> = [];
  for (const row of p.plan.rows) {
    if (row.frozen) continue;
    const mult = base > 0 ? row.weightDecay / base : roleMult[row.role];
    const w = p.trainableVars[row.name];
    if (mult > 0 && w) vars.push({ w, mult, mode: row.decayMode });
  }
  const omega = penalty(vars);
  const examples = p.data.train.slice(0, opts.maxImages ?? 64);
  // an evaluation-only trainer: the same input path (feature cache included) as training, no optimizer
  const trainer = p.stages.trainer.create(p, { epochs: 0, spillDir: null, monitorNorms: false });
  const { metrics } = await trainer.evaluate(examples);
  const lambda = wdForFraction(metrics.loss, omega, fraction);
  const lines = [
    `wd auto: data loss at the start ${metrics.loss.toFixed(4)} (${examples.length} training images)`,
    `  penalty per unit λ: Ω(w) = ${vars.some((v) => v.mode === 'l1') ? 'Σ m·‖w‖₁ / ' : ''}½ Σ m·‖w‖² = ${omega.toPrecision(5)} over ${vars.length} decayed variables`,
    `  λ = ${fraction} × ${metrics.loss.toFixed(4)} / ${omega.toPrecision(5)} = ${lambda.toExponential(3)}  (λ·Ω is ${(fraction * 100).toFixed(0)}% of the loss)`,
  ];
  return { dataLoss: metrics.loss, omega, fraction, lambda, images: examples.length, variables: vars.length, lines };
}

// ---------------------------------------------------------------------------------------------------------------
// weight-decay schedule

export { WdScheduleSchema, type WdScheduleInput };

/** The part of GroupedOptimizer the schedule drives. */
export type DecayAdjustable = ScheduledOptimizer;

/**
 * Multiplies every group's configured weight decay by a schedule factor before each step (the generic
 * ParamScheduler on `weightDecay`). A warmup from a small startFactor gives decay that rises over training; a
 * cosine or step schedule one that falls.
 */
export class WeightDecaySchedule extends ParamScheduler {
  override readonly order: number = CALLBACK_ORDER.weightDecaySchedule;
  readonly factor: (step: number, epoch: number) => number;
  constructor(input: WdScheduleInput, run: RunShape, optimizer: DecayAdjustable) {
    const factor = wdFactor(input, run);
    super('weightDecay', scaled(factor), optimizer, 'weight-decay schedule');
    this.factor = factor;
  }
}

/** The schedule's bare shape (warmup ∘ base, no scaling, base 1): what the lr's stages compute. */
function wdFactor(input: WdScheduleInput, run: RunShape): (step: number, epoch: number) => number {
  const cfg = parseOrThrow(WdScheduleSchema, input, 'tune.wdSchedule');
  const resolved = resolveSchedule(
    { lr: { base: 1, baseBatch: run.batch, scaling: 'none' }, schedule: cfg.schedule, warmup: cfg.warmup ?? { type: 'none' } },
    run,
  );
  return resolved.factor;
}

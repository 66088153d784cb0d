/**
 * Divergence guard: a NaN/Inf loss or gradient, or a loss spike far above its running median, means the last
 * update(s) pushed the weights somewhere bad. Instead of dying (or, worse, checkpointing the wreck) the trainer
 * rolls back to the last good weights and optimizer state, cuts every group's rate by the same factor, and
 * retries; after `maxRetries` cuts it stops with a TrainingError. The decision logic here is plain data in,
 * plain data out; `GoodState` keeps the copy to roll back to; `DivergenceGuardCallback` puts both in the loop, as
 * a callback that vetoes a step from afterBackward.
 */
import * as tf from '@tensorflow/tfjs';
import { TrainingError } from '../errors';
import type { OptimizerState } from '../optim/types';
import type { WeightSnapshot, WeightStore } from '../schedules/weights';
import { CALLBACK_ORDER, CancelStep, type BackwardInfo, type BatchBeginInfo, type Callback, type StepControl } from './callbacks';

import { GuardSchema, type GuardConfig } from './schema';

export { GuardSchema, type GuardConfig };

export interface GuardEvent {
  step: number;
  epoch: number;
  reason: string;
  /** The rate multiplier in force after this event. */
  multiplier: number;
}

/** Everything the guard decides from; it goes into checkpoints so a resumed run judges exactly as before. */
export interface GuardState {
  multiplier: number;
  retries: number;
  /** The last `window` accepted losses, oldest first. */
  recent: number[];
  events: GuardEvent[];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export class DivergenceGuard {
  private state: GuardState = { multiplier: 1, retries: 0, recent: [], events: [] };

  /** @param chanceLoss the loss of a uniform guess (ln K): the spike threshold never drops below spikeFactor × this. */
  constructor(
    readonly config: GuardConfig,
    private readonly chanceLoss: number,
  ) {}

  /** What multiplies every group's rate (1 until the first divergence). */
  get multiplier(): number {
    return this.state.multiplier;
  }

  get events(): readonly GuardEvent[] {
    return this.state.events;
  }

  /** Why this step must not be applied, or null when it is fine. */
  check(loss: number, gradsFinite: boolean): string | null {
    if (!Number.isFinite(loss)) return `loss is ${loss}`;
    if (!gradsFinite) return 'a gradient has NaN or Inf entries';
    const { recent } = this.state;
    if (recent.length >= this.config.minHistory) {
      // Against the median, but never below chance level: a well-fit model going from 0.001 to 0.05 is noise, not divergence.
      const m = median(recent);
      const ref = Math.max(m, this.chanceLoss);
      if (loss > this.config.spikeFactor * ref) {
        return `loss ${loss.toPrecision(4)} is above ${this.config.spikeFactor}× ${m >= this.chanceLoss ? `its running median ${m.toPrecision(4)}` : `the chance-level loss ${ref.toPrecision(4)} (running median ${m.toPrecision(4)})`}`;
      }
    }
    return null;
  }

  /** Records a loss that passed `check`. */
  accept(loss: number): void {
    const r = this.state.recent;
    r.push(loss);
    if (r.length > this.config.window) r.splice(0, r.length - this.config.window);
  }

  /**
   * A divergence: cut the rate, or throw when the retries are used up. The loss history is cleared because the
   * rolled-back weights are judged afresh at the new rate.
   */
  diverged(reason: string, at: { step: number; epoch: number }): GuardEvent {
    const s = this.state;
    if (s.retries >= this.config.maxRetries) {
      throw new TrainingError(
        `training diverged at epoch ${at.epoch + 1}, step ${at.step} (${reason}) after ${s.retries} rate cut(s) to ×${s.multiplier.toPrecision(3)} ` +
          `of the scheduled rates; stopped with nothing written from the diverged state (lower the learning rates, or keep lr.scaling=linear)`,
      );
    }
    s.retries += 1;
    s.multiplier *= this.config.lrCut;
    s.recent = [];
    const event = { step: at.step, epoch: at.epoch, reason, multiplier: s.multiplier };
    s.events.push(event);
    return event;
  }

  getState(): GuardState {
    return { ...this.state, recent: [...this.state.recent], events: this.state.events.map((e) => ({ ...e })) };
  }

  setState(s: GuardState): void {
    this.state = { ...s, recent: [...s.recent], events: s.events.map((e) => ({ ...e })) };
  }
}

/** The optimizer as far as rolling back is concerned. */
export interface StatefulOptimizer {
  getState(): OptimizerState;
  setState(state: OptimizerState): unknown;
}

/**
 * The copy the guard rolls back to: every model weight (BatchNorm moving statistics included: a diverged forward
 * pass in training mode has already written NaN into them) and the optimizer slots, as host arrays.
 */
export class GoodState {
  private weights: WeightSnapshot | null = null;
  private optimizer: OptimizerState | null = null;
  private staged: { weights: WeightSnapshot; optimizer: OptimizerState; step: number } | null = null;
  /** Optimizer step at which the committed copy was taken. */
  step = -1;

  constructor(
    private readonly store: WeightStore,
    private readonly opt: StatefulOptimizer,
  ) {}

  /** Copies the state at a step boundary; it becomes the rollback point only once `commit` says it checked out. */
  stage(step: number): void {
    this.staged = { weights: this.store.read(), optimizer: this.opt.getState(), step };
  }

  /** The staged copy produced a finite, ordinary loss: roll back to it from now on. */
  commit(): void {
    if (!this.staged) return;
    this.weights = this.staged.weights;
    this.optimizer = this.staged.optimizer;
    this.step = this.staged.step;
    this.staged = null;
  }

  get available(): boolean {
    return this.weights !== null;
  }

  restore(): void {
    this.staged = null;
    if (!this.weights || !this.optimizer) {
      throw new TrainingError('training diverged on its very first batch: there is no good state to roll back to (lower the learning rates)');
    }
    this.store.write(this.weights);
    this.opt.setState(this.optimizer);
  }
}

/** One boolean for "every entry of every gradient is finite", computed on the device (no per-tensor reads). */
export function allFinite(grads: Record<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(() => {
    const flags = Object.values(grads).map((g) => tf.all(tf.isFinite(g)));
    if (flags.length === 0) return tf.scalar(1, 'bool') as tf.Scalar;
    return tf.all(tf.stack(flags)) as tf.Scalar;
  });
}

/**
 * The guard in the loop. beforeBatch: at a step's first batch, stage a rollback copy (every `snapshotEvery` steps,
 * at each epoch's first step, and until one exists). afterBackward: judge the batch; a bad one rolls back, cuts the
 * rate and vetoes the step (CancelStep drops it and whatever was accumulated for it); a good one commits the staged
 * copy. beforeStep: the cut multiplies the scheduled rate.
 */
export class DivergenceGuardCallback implements Callback {
  readonly name = 'divergence guard';
  readonly order = CALLBACK_ORDER.divergenceGuard;
  readonly guard: DivergenceGuard;
  private readonly good: GoodState;
  private staged = false;

  constructor(
    config: GuardConfig,
    chanceLoss: number,
    store: WeightStore,
    optimizer: StatefulOptimizer,
    private readonly log: (line: string) => void,
  ) {
    this.guard = new DivergenceGuard(config, chanceLoss);
    this.good = new GoodState(store, optimizer);
  }

  beforeBatch(b: BatchBeginInfo): void {
    const every = this.guard.config.snapshotEvery;
    this.staged = b.micro === 0 && (b.stepInEpoch === 0 || b.step % every === 0 || !this.good.available);
    if (this.staged) this.good.stage(b.step);
  }

  afterBackward(b: BackwardInfo): void {
    const problem = this.guard.check(b.loss, b.gradsFinite ?? true);
    if (!problem) {
      if (this.staged) this.good.commit();
      this.guard.accept(b.loss);
      return;
    }
    const ev = this.guard.diverged(problem, { step: b.step, epoch: b.epoch });
    this.good.restore();
    const s = this.guard.getState();
    this.log(
      `warning: divergence at epoch ${b.epoch + 1}, step ${b.step} (${problem}): rolled back to the weights of step ${this.good.step} ` +
        `and cut every group's rate to ×${ev.multiplier.toPrecision(3)} of the schedule (retry ${s.retries}/${this.guard.config.maxRetries})`,
    );
    // every step of an epoch of one batch rolled back: that epoch runs again at the cut rate (maxRetries bounds it)
    throw new CancelStep(problem, true);
  }

  beforeStep(s: StepControl): void {
    s.lrFactor *= this.guard.multiplier;
  }
}

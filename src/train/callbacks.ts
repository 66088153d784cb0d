/**
 * What the loop tells plug-ins, fastai-style: the loop stays small, behaviours live in callbacks. The events, in
 * the order one fit raises them (a step follows the `afterBatch` of the batch that completes it, so with
 * `accumulate` k there are k batches per step):
 *
 *   beforeFit
 *     beforeEpoch
 *       beforeBatch → afterBackward → afterBatch          (per forward pass)
 *       beforeStep → afterStep                            (per optimizer step)
 *     afterEpoch                                          (after validation)
 *   afterFit
 *
 * A callback cancels by throwing CancelBatch, CancelStep, CancelEpoch or CancelFit (fastai's Cancel*Exception);
 * the matching `afterCancel*` event then runs. See `Callback` for where each may be thrown and what it does.
 */
import type * as tf from '@tensorflow/tfjs';

export interface FitBeginInfo {
  epochs: number;
  /** Optimizer steps per epoch. */
  batchesPerEpoch: number;
  startEpoch: number;
  /** The optimizer steps already done (non-zero on a resumed run). */
  startStep: number;
}

/** Where one forward pass sits. */
export interface BatchBeginInfo {
  epoch: number;
  /** The optimizer step this batch's gradients go into (global, from 0). */
  step: number;
  /** That step's index within the epoch. */
  stepInEpoch: number;
  /** Forward passes already accumulated into this step (0 for its first batch). */
  micro: number;
  /** Images in this batch. */
  examples: number;
}

/** After the backward pass of one batch: the veto point, nothing of it is applied yet. */
export interface BackwardInfo extends BatchBeginInfo {
  /** Mean loss of the batch. */
  loss: number;
  accuracy: number;
  /** Whether every gradient entry is finite; null when the loop was not asked to check (`checkGradients`). */
  gradsFinite: boolean | null;
  /** The batch's gradients by variable name: read them, never dispose them. */
  grads: Readonly<Record<string, tf.Tensor>>;
}

export interface BatchEndInfo extends BatchBeginInfo {
  /** The batch was cancelled (CancelBatch or CancelStep): its gradients were dropped. */
  cancelled: boolean;
}

/** Before an optimizer step; callbacks may scale its rate and change group hyper-parameters. */
export interface StepControl {
  epoch: number;
  step: number;
  batchInEpoch: number;
  batchesPerEpoch: number;
  /** Images the step averages over. */
  examples: number;
  /**
   * What every group's configured rate is multiplied by for this step; starts at 1. The learning-rate schedule and
   * the divergence guard multiply it in, in their order.
   */
  lrFactor: number;
}

/** After an optimizer step was applied. */
export interface BatchInfo {
  epoch: number;
  /** Global optimizer step, counted from 0 at the start of the run. */
  step: number;
  batchInEpoch: number;
  batchesPerEpoch: number;
  loss: number;
  accuracy: number;
  examples: number;
  /** Effective learning rate of each group for this step. */
  lrs: Record<string, number>;
  /** ‖Δw‖/‖w‖ per group, when the optimizer reported norms. */
  updateRatios?: Record<string, number>;
}

export interface EpochMetrics {
  loss: number;
  accuracy: number;
}

export interface EpochInfo {
  epoch: number;
  step: number;
  train: EpochMetrics;
  val?: EpochMetrics;
  /** Which weights `val` was measured on: 'ema' when the run keeps a weight EMA (validation then runs on it). */
  valWeights?: 'ema';
  seconds: number;
  numTensors: number;
  lrs: Record<string, number>;
}

export interface FitEndInfo {
  epochs: number;
  stoppedEarly?: string;
}

/** What a `Cancel*` carries to the `afterCancel*` event. */
export interface CancelInfo {
  reason: string;
  /** The callback that threw it (its `name`, or `callback #i` in order). */
  by: string;
}

/**
 * The base of the four cancellations. They rank batch < step < epoch < fit: when callbacks of one event throw
 * different ones, the widest wins. Every callback still sees the event it was in (a log never misses one); the
 * cancellation takes effect when the event has run.
 */
export abstract class Cancel extends Error {
  abstract readonly rank: number;
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Skip this batch: from beforeBatch (no forward pass) or afterBackward (its gradients are dropped). */
export class CancelBatch extends Cancel {
  readonly rank = 0;
}

/**
 * Drop the step in progress, this batch and any accumulated before it: from afterBackward (the veto: the divergence
 * guard throws it after rolling back) or beforeStep (nothing is applied). `retryEmptyEpoch`: when no step of the
 * epoch was applied, run the epoch again (the guard's rollback in an epoch of one batch; its retry limit bounds it).
 */
export class CancelStep extends Cancel {
  readonly rank = 1;
  constructor(
    reason: string,
    readonly retryEmptyEpoch = false,
  ) {
    super(reason);
  }
}

/**
 * End this epoch's training pass now (the step in progress is dropped); the epoch then closes as usual, with
 * validation, afterEpoch and its checkpoint, so a resume sees a whole epoch. From any event inside an epoch.
 */
export class CancelEpoch extends Cancel {
  readonly rank = 2;
}

/**
 * End the fit. From afterEpoch: after that epoch is committed, with `stoppedEarly` recorded in the checkpoint so a
 * resume does not train further (early stopping, the plateau rule). From inside an epoch: at once, nothing of the
 * epoch is committed (the LR finder, the signal handler). From beforeFit: no epoch runs.
 */
export class CancelFit extends Cancel {
  readonly rank = 3;
}

/**
 * Where a callback runs among the others at every event: lower first, equal orders in the order given. The
 * built-in ones leave room around them; a callback without an `order` runs at DEFAULT.
 */
export const CALLBACK_ORDER = {
  /** The learning-rate schedule: its plateau stage sees an epoch's metrics before anything else does. */
  lrSchedule: -10,
  progress: 0,
  metricsLog: 1,
  sweep: 5,
  ratioMonitor: 10,
  /** Schedules of other hyper-parameters (weight decay, momentum): set before the step, after the rate monitor. */
  paramSchedule: 15,
  weightDecaySchedule: 15,
  earlyStopping: 20,
  medianStop: 20,
  /** After the schedules multiplied the step's rate in: its cut multiplies the scheduled rate. */
  divergenceGuard: 30,
  /** The weight EMA (src/train/ema.ts): averages the step's weights once the built-in step-time callbacks have run. */
  ema: 40,
  DEFAULT: 50,
  /** Its afterFit throws the InterruptedError, so every other callback has closed its files before it. */
  signals: 100,
} as const;

/** The callbacks sorted by `order` (a stable sort: equal orders keep the order given). */
export function inCallbackOrder(callbacks: readonly Callback[]): Callback[] {
  return callbacks
    .map((cb, i) => ({ cb, i, order: cb.order ?? CALLBACK_ORDER.DEFAULT }))
    .sort((a, b) => a.order - b.order || a.i - b.i)
    .map((x) => x.cb);
}

type Hook<T> = (info: T) => void | Promise<void>;

export interface Callback {
  /** Names the callback in logs and errors. */
  readonly name?: string;
  /** Where it runs among the others (CALLBACK_ORDER); default CALLBACK_ORDER.DEFAULT. */
  readonly order?: number;
  /** May throw CancelFit: no epoch runs. */
  beforeFit?: Hook<FitBeginInfo>;
  beforeEpoch?: Hook<number>;
  /** May throw CancelBatch (skip it), CancelStep, CancelEpoch, CancelFit. */
  beforeBatch?: Hook<BatchBeginInfo>;
  /** Gradients are there, nothing is applied: may throw CancelBatch, CancelStep (the veto), CancelEpoch, CancelFit. */
  afterBackward?: Hook<BackwardInfo>;
  /** Runs after every batch, cancelled ones included; may throw CancelEpoch, CancelFit. */
  afterBatch?: Hook<BatchEndInfo>;
  /** May scale `lrFactor`, change the optimizer's groups, or throw CancelStep, CancelEpoch, CancelFit. */
  beforeStep?: Hook<StepControl>;
  /** After an applied step (not after a cancelled one); may throw CancelEpoch, or CancelFit to stop at this step. */
  afterStep?: Hook<BatchInfo>;
  /** After validation; may throw CancelFit to end training after this epoch. */
  afterEpoch?: Hook<EpochInfo>;
  afterFit?: Hook<FitEndInfo>;
  afterCancelBatch?: Hook<CancelInfo>;
  afterCancelStep?: Hook<CancelInfo>;
  afterCancelEpoch?: Hook<CancelInfo>;
  afterCancelFit?: Hook<CancelInfo>;
}

/** Every event's name, in the order of the table in the README. */
export type EventName = Exclude<keyof Callback, 'name' | 'order'>;

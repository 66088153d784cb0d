import * as tf from '@tensorflow/tfjs';
import { TrainingError } from '../errors';
import type { BatchAugmenter } from '../data/augment';
import { weightedTargets } from '../data/balance';
import { rawBatches, type RawBatch } from '../data/batches';
import { Rng } from '../data/rng';
import type { DataSource, Example } from '../data/source';
import type { Network } from '../models/network';
import type { OptimizerState, StepResult } from '../optim/types';
import { namedVariableGrads } from '../optim/named';
import type { ShardOutput } from '../engine/wasm/parallel';
import type { FeatureCache } from './feature-cache';
import { allFinite, DivergenceGuardCallback, type DivergenceGuard, type GuardConfig, type GuardEvent } from './guard';
import { modelWeights } from '../schedules/weights';
import type { Stateful } from '../stateful';
import type { TrainerState } from './trainer-state';
import {
  CancelBatch,
  CancelEpoch,
  CancelFit,
  CancelStep,
  type BatchBeginInfo,
  type BatchInfo,
  type Callback,
  type EpochInfo,
  type StepControl,
} from './callbacks';
import { Events } from './loop/events';
import { GradientAccumulator } from './loop/accumulate';
import { DropoutSeeds } from './loop/dropout-seeds';
import { FeatureInputs } from './loop/feature-inputs';
import { GradientThreads } from './loop/parallel-step';
import { LrScheduleCallback, type LrPolicy } from './loop/lr-schedule';
import { TrainableVariables, type FreezePolicy } from './loop/trainable';
import { evaluateFolded, FoldedDuringFit, type Evaluation } from './evaluate';
import { EmaCallback, type WeightEma } from './ema';
import { ParallelEvaluator, type ValidationPlacement } from './parallel-eval';

export type { LrPolicy, StopRequest } from './loop/lr-schedule';
export type { FreezePolicy } from './loop/trainable';
export { mixSeed } from './loop/dropout-seeds';

/** The optimizer as the loop sees it: named gradients in, updates applied; state in and out for the guard. */
export interface StepOptimizer {
  step(grads: Record<string, tf.Tensor>, vars: Record<string, tf.Variable>, lrFactor: number, opts?: { norms?: boolean }): StepResult;
  getState?(): OptimizerState;
  setState?(state: OptimizerState): unknown;
}

/** Everything a Trainer is built from, in one object (LoopTrainerFactory in build.ts fills it from a job). */
export interface TrainerOptions {
  network: Network;
  data: DataSource;
  /** The trainable variables by name: only these are differentiated. */
  vars: Record<string, tf.Variable>;
  /**
   * Which of `vars` stand still at a step, when that changes during the run (fastai's frozen phase); they are left
   * out of the gradient computation (src/train/loop/trainable.ts). Absent: every one of `vars` trains throughout.
   */
  freeze?: FreezePolicy | null;
  optimizer: StepOptimizer;
  /** The learning-rate policy; absent: every step at the configured rates. */
  lr?: LrPolicy;
  callbacks?: Callback[];
  /** Frozen leading stages whose activations are cached (null: none), and the part that trains (default network.train). */
  prefix?: tf.LayersModel | null;
  suffix?: tf.LayersModel;
  epochs: number;
  /** Images per forward pass. */
  batch: number;
  size: number;
  flip: boolean;
  /** Label smoothing ε of the training loss (default 0); validation loss stays the plain cross-entropy. */
  labelSmoothing?: number;
  /** Left-right flip probability of training images; absent: 0.5 when `flip`, else 0. */
  hflip?: number;
  /** Batched training transforms (src/data/augment.ts); its draws come from the run's RNG with the data order. */
  augment?: BatchAugmenter | null;
  /**
   * Augmented views per image whose frozen-prefix outputs are cached (src/data/cached-views.ts); 0 or absent: none.
   * Applies only with both a prefix and an augmenter.
   */
  cachedViews?: number;
  /** data.balance 'sampler': each epoch's order from the balanced sampler (src/data/balance.ts). */
  balanced?: boolean;
  /** data.balance 'weights': class weights of the loss, and the label smoothing applied before them (the loss then smooths nothing). */
  classWeights?: { weights: number[]; smoothing: number } | null;
  seed: number;
  /** Bytes of cached prefix activations kept in memory before spilling to `spillDir`. */
  cacheBytes: number;
  spillDir: string | null;
  /** Ask the optimizer for ‖Δw‖ and ‖w‖ every step (one small host read). */
  monitorNorms: boolean;
  /** Forward passes per optimizer step (default 1); see src/train/loop/accumulate.ts. */
  accumulate?: number;
  /** Threads computing each batch's gradients (default 1); see src/train/loop/parallel-step.ts. */
  threads?: number;
  /**
   * Divergence guard (a callback, src/train/guard.ts). Absent, or `enabled: false`: a non-finite loss throws a
   * TrainingError before anything is applied (what the LR finder relies on).
   */
  guard?: GuardConfig | null;
  /**
   * Threads of the per-epoch validation pass (src/train/parallel-eval.ts): `auto` or a count, resolved as predict
   * resolves `--threads`; default 1 (this thread only). While gradient workers run, the pass uses them rather than
   * threads of its own.
   */
  valThreads?: 'auto' | number;
  /** Weight EMA (src/train/ema.ts): updated after every applied step; validation and `evaluate` run on it. */
  ema?: WeightEma | null;
  /**
   * Called once per finished epoch, after validation, the callbacks and the stop decision, with the trainer in a
   * consistent state: where checkpoints are written. Never called from a diverged state.
   */
  onEpochCommitted?(trainer: Trainer, info: EpochInfo, stoppedEarly: string | null): void | Promise<void>;
  log?: (line: string) => void;
}

export interface FitResult {
  epochs: number;
  history: EpochInfo[];
  stoppedEarly?: string;
  /** Divergences the guard recovered from (rollback + rate cut). */
  guardEvents: GuardEvent[];
}

/** What one epoch's training pass adds up. */
interface EpochTotals {
  lossSum: number;
  correct: number;
  seen: number;
  stepInEpoch: number;
  lrs: Record<string, number>;
  /** A cancelled step asked for the epoch to run again if nothing of it was applied. */
  retry: boolean;
  /** Batches cancelled (CancelBatch, CancelStep): an epoch of only those applied nothing, yet decoded its images. */
  cancelled: number;
}

/**
 * The small loop: batches in, loss and gradients of the trainable variables only, one optimizer step per
 * `accumulate` batches, named events around it (src/train/callbacks.ts). The strategies it calls live in
 * src/train/loop/ (accumulation, gradient threads, frozen-prefix inputs, dropout seeds); the divergence guard, the
 * schedules, progress, metrics and early stopping are callbacks; checkpoints are written from `onEpochCommitted`.
 * Randomness is a function of the run's state (the data order and flips from `rng`, dropout from the step), so a
 * resumed run continues bit for bit.
 */
export class Trainer implements Stateful<TrainerState> {
  readonly stateKey = 'trainer';
  readonly rng: Rng;
  step = 0;
  epoch = 0;
  private history: EpochInfo[] = [];
  private stoppedEarly: string | null = null;
  private readonly suffix: tf.LayersModel;
  private readonly events: Events;
  private readonly inputs: FeatureInputs;
  private readonly dropout: DropoutSeeds;
  private readonly gradThreads: GradientThreads;
  private readonly accumulator: GradientAccumulator;
  private readonly trainable: TrainableVariables;
  private readonly guardCallback: DivergenceGuardCallback | null = null;
  /** During fit only: the folded copy validation runs on. */
  private folded: FoldedDuringFit | null = null;
  private readonly valEval: ParallelEvaluator;

  constructor(private readonly o: TrainerOptions) {
    const net = o.network;
    this.suffix = o.suffix ?? net.train;
    this.rng = new Rng(o.seed);
    this.accumulator = new GradientAccumulator(o.accumulate ?? 1);
    this.trainable = new TrainableVariables(o.vars, o.freeze ?? null);
    const log = (l: string) => this.log(l);
    this.inputs = new FeatureInputs(o.prefix ?? null, {
      size: o.size,
      preprocess: net.backbone.preprocess,
      augment: o.augment,
      cacheBytes: o.cacheBytes,
      spillDir: o.spillDir,
      log,
    });
    this.dropout = new DropoutSeeds(this.suffix, o.seed);
    this.gradThreads = new GradientThreads(this.suffix, o.vars, { threads: o.threads ?? 1, labelSmoothing: o.labelSmoothing ?? 0, log });
    const builtIn: Callback[] = o.lr ? [new LrScheduleCallback(o.lr)] : [];
    if (o.guard?.enabled) {
      const opt = o.optimizer;
      if (!opt.getState || !opt.setState) throw new Error('the divergence guard needs an optimizer with getState/setState');
      // with an EMA the rollback copy holds the average too: the wrecked step must leave it as well
      const store = o.ema ? o.ema.alongside(modelWeights(net.train)) : modelWeights(net.train);
      this.guardCallback = new DivergenceGuardCallback(o.guard, Math.log(net.classes.length), store, opt as Required<StepOptimizer>, log);
      builtIn.push(this.guardCallback);
    }
    if (o.ema) builtIn.push(new EmaCallback(o.ema));
    this.events = new Events([...builtIn, ...(o.callbacks ?? [])]);
    this.valEval = new ParallelEvaluator({
      threads: o.valThreads ?? 1,
      size: o.size,
      preprocess: net.backbone.preprocess,
      log,
      lentThreads: () => this.gradThreads.workerThreads,
    });
  }

  get guard(): DivergenceGuard | null {
    return this.guardCallback?.guard ?? null;
  }

  get featureCache(): FeatureCache | null {
    return this.inputs.cache;
  }

  /** Threads computing gradients in the running fit (1 outside fit or when the workers did not start). */
  get threads(): number {
    return this.gradThreads.threads;
  }

  /**
   * Threads of the last validation pass, where it ran besides this thread, and each validation worker's tensor count
   * after its last batch.
   */
  get validation(): { threads: number; placement: ValidationPlacement; workerTensors: number[] } {
    return { threads: this.valEval.threads, placement: this.valEval.placement, workerTensors: this.valEval.workerTensors };
  }

  /** Tensors (count and bytes) held by each gradient worker after its last step (empty on one thread). */
  get workerMemory(): Array<{ numTensors: number; numBytes: number }> {
    return this.gradThreads.workerMemory;
  }

  /** The trainer's part of a checkpoint. */
  getState(): TrainerState {
    const { epoch, step, guard } = this;
    return {
      epoch,
      step,
      rng: this.rng.getState(),
      guard: guard ? guard.getState() : null,
      history: this.history.map((h) => ({ ...h })),
      stoppedEarly: this.stoppedEarly,
    };
  }

  setState(s: TrainerState): void {
    this.epoch = s.epoch;
    this.step = s.step;
    this.rng.setState(s.rng);
    if (this.guard && s.guard) this.guard.setState(s.guard);
    this.history = s.history.map((h) => ({ ...h }));
    this.stoppedEarly = s.stoppedEarly;
  }

  private log(line: string): void {
    (this.o.log ?? ((s: string) => console.log(s)))(line);
  }

  async fit(): Promise<FitResult> {
    await this.gradThreads.start();
    this.folded = new FoldedDuringFit(this.suffix);
    try {
      return await this.fitLoop();
    } finally {
      this.folded.dispose();
      this.folded = null;
      await this.valEval.dispose();
      await this.gradThreads.stop();
    }
  }

  // ---- the loop ------------------------------------------------------------------------------------------------

  private async fitLoop(): Promise<FitResult> {
    const spe = Math.ceil(Math.ceil(this.o.data.train.length / this.o.batch) / this.accumulator.accumulate);
    let stoppedEarly = this.stoppedEarly ?? undefined;
    try {
      await this.events.emit('beforeFit', { epochs: this.o.epochs, batchesPerEpoch: spe, startEpoch: this.epoch, startStep: this.step });
      while (!stoppedEarly && this.epoch < this.o.epochs) await this.runEpoch(spe);
    } catch (e) {
      if (!(e instanceof CancelFit)) throw e;
      stoppedEarly = e.reason;
      await this.events.cancelled(e);
    }
    await this.events.emit('afterFit', { epochs: this.epoch, stoppedEarly });
    return { epochs: this.epoch, history: this.history.map((h) => ({ ...h })), stoppedEarly, guardEvents: this.guard ? [...this.guard.events] : [] };
  }

  private async runEpoch(spe: number): Promise<void> {
    const epoch = this.epoch;
    const t0 = Date.now();
    const t: EpochTotals = { lossSum: 0, correct: 0, seen: 0, stepInEpoch: 0, lrs: {}, retry: false, cancelled: 0 };
    let cancelled = false;
    try {
      await this.events.emit('beforeEpoch', epoch);
      await this.trainPass(epoch, spe, t);
    } catch (e) {
      if (!(e instanceof CancelEpoch)) throw e;
      cancelled = true;
      await this.events.cancelled(e);
    }
    // nothing of the epoch was applied and a cancelled step asked for it: run it again (the guard bounds how often)
    if (t.seen === 0 && t.retry && !cancelled) return;
    if (t.seen === 0 && !cancelled && t.cancelled === 0) throw new TrainingError('no training image could be decoded');
    const val = this.o.data.val.length ? (await this.evaluate(this.o.data.val)).metrics : undefined;
    this.epoch++;
    const train = { loss: t.lossSum / t.seen, accuracy: t.correct / t.seen };
    const info: EpochInfo = {
      epoch,
      step: this.step,
      train,
      val,
      ...(val && this.o.ema ? { valWeights: 'ema' as const } : {}),
      seconds: (Date.now() - t0) / 1000,
      numTensors: tf.memory().numTensors,
      lrs: t.lrs,
    };
    this.history.push(info);
    let stop: CancelFit | null = null;
    try {
      await this.events.emit('afterEpoch', info);
    } catch (e) {
      if (!(e instanceof CancelFit)) throw e;
      stop = e;
    }
    // recorded before the commit, so the checkpoint of a stopped run resumes as finished
    this.stoppedEarly = stop ? stop.reason : null;
    await this.o.onEpochCommitted?.(this, info, this.stoppedEarly);
    if (stop) throw stop;
  }

  private async trainPass(epoch: number, spe: number, t: EpochTotals): Promise<void> {
    const o = this.o;
    const views = o.prefix && o.augment && (o.cachedViews ?? 0) > 0 ? { views: { count: o.cachedViews as number, epoch, seed: o.seed } } : {};
    const opts = { size: o.size, batch: o.batch, shuffle: true, flip: o.flip, hflip: o.hflip, augment: o.augment, balanced: o.balanced, ...views };
    try {
      for await (const b of rawBatches(o.data, o.data.train, opts, this.rng)) {
        await this.runBatch(b, epoch, t);
        if (this.accumulator.full) await this.runStep(epoch, spe, t);
      }
      // the last step of an epoch averages whatever is left, so epochs end on a step boundary
      if (!this.accumulator.empty) await this.runStep(epoch, spe, t);
    } finally {
      this.accumulator.discard();
    }
  }

  private async runBatch(b: RawBatch, epoch: number, t: EpochTotals): Promise<void> {
    const at: BatchBeginInfo = { epoch, step: this.step, stepInEpoch: t.stepInEpoch, micro: this.accumulator.micro, examples: b.n };
    let cancelled = false;
    try {
      await this.events.emit('beforeBatch', at);
      // every forward pass of a step differentiates what that step trains
      const r = await this.forwardBackward(b, this.step * this.accumulator.accumulate + at.micro, this.trainable.at(this.step));
      try {
        await this.events.emit('afterBackward', { ...at, loss: r.loss, accuracy: r.hit / b.n, gradsFinite: r.gradsFinite, grads: r.grads });
        if (!Number.isFinite(r.loss)) {
          throw new TrainingError(
            `loss became ${r.loss} at epoch ${epoch + 1}, step ${this.step}: the learning rates are too high for this batch size; ` +
              'nothing from this step was applied or written (lower lr, or keep lr.scaling=linear)',
          );
        }
      } catch (e) {
        tf.dispose(r.grads);
        throw e;
      }
      this.accumulator.add(r.grads, b.n, r.loss, r.hit);
    } catch (e) {
      if (!(e instanceof CancelBatch || e instanceof CancelStep)) throw e;
      cancelled = true;
      t.cancelled++;
      if (e instanceof CancelStep) {
        this.accumulator.discard();
        t.retry ||= e.retryEmptyEpoch;
      }
      await this.events.cancelled(e);
    }
    await this.events.emit('afterBatch', { ...at, cancelled });
  }

  private async runStep(epoch: number, spe: number, t: EpochTotals): Promise<void> {
    const ctl: StepControl = {
      epoch,
      step: this.step,
      batchInEpoch: t.stepInEpoch,
      batchesPerEpoch: spe,
      examples: this.accumulator.pendingExamples,
      lrFactor: 1,
    };
    try {
      await this.events.emit('beforeStep', ctl);
    } catch (e) {
      if (!(e instanceof CancelStep)) throw e;
      this.accumulator.discard();
      t.cancelled++;
      await this.events.cancelled(e);
      return;
    }
    const s = this.accumulator.take();
    let result: StepResult;
    try {
      result = this.o.optimizer.step(s.grads, this.o.vars, ctl.lrFactor, { norms: this.o.monitorNorms });
    } finally {
      tf.dispose(s.grads);
    }
    t.lrs = result.lrs;
    t.lossSum += s.lossSum;
    t.correct += s.hits;
    t.seen += s.examples;
    const norms = result.norms?.groups;
    const updateRatios = norms ? Object.fromEntries(Object.entries(norms).map(([g, n]) => [g, n.weight > 0 ? n.update / n.weight : 0])) : undefined;
    const { step } = this;
    const info: BatchInfo = {
      epoch,
      step,
      batchInEpoch: t.stepInEpoch,
      batchesPerEpoch: spe,
      loss: s.lossSum / s.examples,
      accuracy: s.hits / s.examples,
      examples: s.examples,
      lrs: result.lrs,
      updateRatios,
    };
    try {
      await this.events.emit('afterStep', info);
    } finally {
      this.step++;
      t.stepInEpoch++;
    }
  }

  /** Forward and backward on one batch: the loss, the hit count, whether every gradient is finite, and the gradients of `vars`. */
  private async forwardBackward(b: RawBatch, forwardPass: number, vars: Record<string, tf.Variable>) {
    this.dropout.apply(forwardPass);
    const x = this.inputs.of(b);
    const aug = this.o.augment;
    const k = this.o.network.classes.length;
    const y0 = b.draws && aug ? aug.targets(b.labels, k, b.draws.batch) : tf.tidy(() => tf.oneHot(tf.tensor1d(b.labels, 'int32'), k));
    const cw = this.o.classWeights;
    const y = cw ? weightedTargets(y0 as tf.Tensor2D, cw.weights, cw.smoothing) : y0;
    if (y !== y0) y0.dispose();
    let out: ShardOutput;
    try {
      out = await this.gradThreads.compute(
        x,
        y,
        (xs, ys) => this.shard(xs, ys, vars),
        (shard) => this.dropout.seedsFor(forwardPass, shard),
        vars,
      );
    } finally {
      tf.dispose([x, y]);
    }
    const { value, hits, grads } = out;
    const check = this.guard?.config.checkGradients ?? false;
    // one host read for the three scalars
    const packed = tf.tidy(() => tf.stack([value, hits, check ? tf.cast(allFinite(grads), 'float32') : tf.scalar(1)]));
    const [loss, hit, finite] = Array.from(await packed.data());
    tf.dispose([value, hits, packed]);
    return { loss, hit, gradsFinite: check ? finite === 1 : null, grads };
  }

  /** Loss, hits and gradients of `vars` over one shard of a batch, on this thread. */
  private shard(x: tf.Tensor, y: tf.Tensor, vars: Record<string, tf.Variable>): ShardOutput {
    let hits: tf.Scalar | undefined;
    const { value, grads } = namedVariableGrads(() => {
      const logits = this.suffix.apply(x, { training: true }) as tf.Tensor2D;
      hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32'))) as tf.Scalar;
      return tf.losses.softmaxCrossEntropy(y, logits, undefined, this.o.labelSmoothing ?? 0) as tf.Scalar;
    }, vars);
    return { value, hits: hits!, grads };
  }

  /**
   * Loss, accuracy and the confusion matrix (rows: true class, columns: predicted) over `examples` (src/train/evaluate.ts),
   * on the EMA weights when the run keeps an EMA.
   */
  async evaluate(examples: Example[]): Promise<Evaluation> {
    const ema = this.o.ema;
    return ema ? ema.withAveragedWeights(() => this.evaluateCurrent(examples)) : this.evaluateCurrent(examples);
  }

  private async evaluateCurrent(examples: Example[]): Promise<Evaluation> {
    const opts = { size: this.o.size, batch: this.o.batch, classes: this.o.network.classes.length };
    const inputs = (b: RawBatch) => this.inputs.of(b);
    if (this.folded) return this.valEval.evaluate(this.folded.current(), this.o.data, examples, inputs, opts);
    return evaluateFolded(this.suffix, this.o.data, examples, inputs, opts);
  }
}

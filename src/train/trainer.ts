import * as tf from '@tensorflow/tfjs';
import { TrainingError } from '../errors';
import type { BatchAugmenter } from '../data/augment';
import { weightedTargets } from '../data/balance';
import { rawBatches, type RawBatch } from '../data/batches';
import { preprocessBatch } from '../data/preprocess';
import { Rng } from '../data/rng';
import type { DataSource, Example } from '../data/source';
import type { Network } from '../models/network';
import type { OptimizerState, StepResult } from '../optim/types';
import { flatLayers, namedVariableGrads } from '../optim/named';
import { FeatureCache } from './feature-cache';
import { FoldedModel } from '../models/fold-batchnorm';
import { allFinite, DivergenceGuard, GoodState, type GuardConfig, type GuardEvent } from './guard';
import { modelWeightStore } from './checkpoint';
import type { TrainerState } from './trainer-state';
import { ParallelGradients, type ShardOutput } from '../engine/wasm/parallel';
import { inCallbackOrder, type Callback, type EpochInfo, type EpochMetrics, type StopRequest } from './callbacks';

/** The optimizer as the loop sees it: named gradients in, updates applied; state in and out for the guard. */
export interface StepOptimizer {
  step(grads: Record<string, tf.Tensor>, vars: Record<string, tf.Variable>, lrFactor: number, opts?: { norms?: boolean }): StepResult;
  getState?(): OptimizerState;
  setState?(state: OptimizerState): unknown;
}

/** The learning-rate multiplier over time, shared by every group so their ratios hold. */
export interface LrPolicy {
  factor(step: number, epoch: number): number;
  /**
   * Fed the epoch's metrics (`loss`, `accuracy`, and `val_loss`, `val_accuracy` when there are validation images)
   * after each epoch: reduce-on-plateau lives here.
   */
  epochEnd?(epoch: number, metrics: Readonly<Record<string, number>>): StopRequest | void;
}

export interface TrainerOptions {
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
  /** data.balance 'sampler': each epoch's order from the balanced sampler (src/data/balance.ts). */
  balanced?: boolean;
  /** data.balance 'weights': class weights of the loss, and the label smoothing applied before them (the loss then smooths nothing). */
  classWeights?: { weights: number[]; smoothing: number } | null;
  seed: number;
  /** Leading backbone stages that are frozen: their outputs are cached (0 = none). */
  cachedStages: number;
  /** Bytes of cached prefix activations kept in memory before spilling to `spillDir`. */
  cacheBytes: number;
  spillDir: string | null;
  /** Ask the optimizer for ‖Δw‖ and ‖w‖ every step (one small host read). */
  monitorNorms: boolean;
  /**
   * Forward passes whose gradients are averaged (weighted by their image counts) into one optimizer step
   * (default 1). The last step of an epoch averages whatever is left, so epochs end on a step boundary.
   */
  accumulate?: number;
  /**
   * Threads computing each batch's gradients (default 1). Above 1, on the wasm backend, the batch is split
   * into that many shards and worker threads compute all but the first (src/engine/wasm/parallel.ts);
   * BatchNorm in training mode then sees per-shard statistics. Ignored (one thread) on other backends and
   * when only a head trains on cached features, where a step is too small to share.
   */
  threads?: number;
  /**
   * Divergence guard. Absent, or `enabled: false`: a non-finite loss throws a TrainingError before anything is
   * applied (what the LR finder relies on).
   */
  guard?: GuardConfig | null;
  /**
   * Called once per finished epoch, after the schedule, the callbacks and the stop decision, with the trainer in
   * a consistent state: where checkpoints are written. Never called from a diverged state.
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

/** A 31-bit seed from two integers (mulberry32 of a mix): dropout masks per forward pass. */
export function mixSeed(a: number, b: number): number {
  const r = new Rng((Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul((b + 1) >>> 0, 0x85ebca6b)) >>> 0);
  return Math.floor(r.next() * 2 ** 31);
}

interface Pending {
  grads: Record<string, tf.Tensor>;
  examples: number;
  lossSum: number;
  hits: number;
  micro: number;
}

/**
 * The small loop: batches in, loss and gradients of the trainable variables only, one optimizer
 * step per `accumulate` batches, callbacks around it. Everything else (progress, metrics files, early
 * stopping) is a Callback; checkpoints are written from `onEpochCommitted`.
 *
 * Randomness is a function of the run's state, so a resumed run continues bit for bit: the data order and
 * flips come from `rng` (one integer of state), and dropout masks from (seed, step, micro-batch). tfjs's
 * Dropout with a fixed seed draws the SAME mask on every call (its seed re-seeds a fresh generator each
 * time), so the trainer re-seeds each dropout layer before every forward pass.
 */
export class Trainer {
  private readonly prefix: tf.LayersModel | null;
  private readonly suffix: tf.LayersModel;
  private readonly cache: FeatureCache | null;
  private readonly dropouts: Array<{ layer: tf.layers.Layer; base: number }>;
  private readonly accumulate: number;
  private parallel: ParallelGradients | null = null;
  /** During fit: the BatchNorm-folded copy validation runs on, built once and refreshed each epoch (undefined: not built). */
  private folded: FoldedModel | null | undefined = undefined;
  private fitting = false;
  readonly guard: DivergenceGuard | null;
  private readonly good: GoodState | null;
  readonly rng: Rng;
  step = 0;
  epoch = 0;
  private history: EpochInfo[] = [];
  /** Sorted by `order` once, so every event visits them in the same order. */
  private readonly callbacks: Callback[];
  private stoppedEarly: string | null = null;

  constructor(
    private readonly net: Network,
    private readonly data: DataSource,
    private readonly vars: Record<string, tf.Variable>,
    private readonly optimizer: StepOptimizer,
    private readonly lr: LrPolicy,
    callbacks: Callback[],
    private readonly opts: TrainerOptions,
    parts: { prefix: tf.LayersModel | null; suffix: tf.LayersModel },
  ) {
    this.callbacks = inCallbackOrder(callbacks);
    this.prefix = parts.prefix;
    this.suffix = parts.suffix;
    this.rng = new Rng(opts.seed);
    this.accumulate = opts.accumulate ?? 1;
    if (!Number.isInteger(this.accumulate) || this.accumulate < 1) throw new RangeError(`accumulate must be a positive integer, got ${this.accumulate}`);
    this.cache = this.prefix ? new FeatureCache(this.prefix.outputs[0].shape.slice(1) as number[], opts.cacheBytes, opts.spillDir, (l) => this.log(l)) : null;
    this.dropouts = flatLayers(this.suffix)
      .filter((l) => l.getClassName() === 'Dropout')
      .map((layer, i) => ({ layer, base: mixSeed((layer as unknown as { seed?: number }).seed ?? opts.seed, i) }));
    if (opts.guard?.enabled) {
      if (!optimizer.getState || !optimizer.setState) throw new Error('the divergence guard needs an optimizer with getState/setState');
      this.guard = new DivergenceGuard(opts.guard, Math.log(net.classes.length));
      this.good = new GoodState(modelWeightStore(net.train), optimizer as Required<StepOptimizer>);
    } else {
      this.guard = null;
      this.good = null;
    }
  }

  get featureCache(): FeatureCache | null {
    return this.cache;
  }

  /** The trainer's part of a checkpoint. */
  getState(): TrainerState {
    return {
      epoch: this.epoch,
      step: this.step,
      rng: this.rng.getState(),
      guard: this.guard ? this.guard.getState() : null,
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

  /** Network input for a batch: images, or the cached frozen-prefix activations. */
  private inputs(b: RawBatch): tf.Tensor {
    const pre = this.net.backbone.preprocess;
    const size = this.opts.size;
    const aug = this.opts.augment;
    if (b.draws && aug) {
      const draws = b.draws;
      if (!this.prefix) return aug.images(b.pixels, draws.rows, draws.batch, pre);
      // an augmented view is seen once, so the frozen prefix runs on every batch instead of filling the cache
      return tf.tidy(() => this.prefix!.apply(aug.images(b.pixels, draws.rows, draws.batch, pre), { training: false }) as tf.Tensor);
    }
    if (!this.prefix || !this.cache) return preprocessBatch(b.pixels, b.n, size, pre);
    const per = size * size * 3;
    return this.cache.batch(b.keys, (rows) => {
      const px = new Uint8Array(rows.length * per);
      rows.forEach((r, j) => px.set(b.pixels.subarray(r * per, (r + 1) * per), j * per));
      return tf.tidy(() => this.prefix!.apply(preprocessBatch(px, rows.length, size, pre), { training: false }) as tf.Tensor);
    });
  }

  private batchesPerEpoch(examples: Example[]): number {
    return Math.ceil(examples.length / this.opts.batch);
  }

  private log(line: string): void {
    (this.opts.log ?? ((s: string) => console.log(s)))(line);
  }

  /** Dropout seeds for one forward pass: shard 0 keeps the single-thread seeds, so one thread is unchanged. */
  private seedsFor(microIndex: number, shard: number): number[] {
    return this.dropouts.map((d) => (shard === 0 ? mixSeed(d.base, microIndex) : mixSeed(mixSeed(d.base, microIndex), shard)));
  }

  /** Loss, hits and gradients of one shard of a batch, on this thread. */
  private shard(x: tf.Tensor, y: tf.Tensor): ShardOutput {
    let hits: tf.Scalar | undefined;
    const { value, grads } = namedVariableGrads(() => {
      const logits = this.suffix.apply(x, { training: true }) as tf.Tensor2D;
      hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32'))) as tf.Scalar;
      return tf.losses.softmaxCrossEntropy(y, logits, undefined, this.opts.labelSmoothing ?? 0) as tf.Scalar;
    }, this.vars);
    return { value, hits: hits!, grads };
  }

  /** Forward and backward on one batch: the loss, the hit count, whether every gradient is finite, and the gradients. */
  private async forwardBackward(b: RawBatch, microIndex: number) {
    const seeds0 = this.seedsFor(microIndex, 0);
    this.dropouts.forEach((d, i) => ((d.layer as unknown as { seed: number }).seed = seeds0[i]));
    const x = this.inputs(b);
    const y0 =
      b.draws && this.opts.augment
        ? this.opts.augment.targets(b.labels, this.net.classes.length, b.draws.batch)
        : tf.tidy(() => tf.oneHot(tf.tensor1d(b.labels, 'int32'), this.net.classes.length));
    const cw = this.opts.classWeights;
    const y = cw ? weightedTargets(y0 as tf.Tensor2D, cw.weights, cw.smoothing) : y0;
    if (y !== y0) y0.dispose();
    let out: ShardOutput;
    try {
      out = this.parallel
        ? await this.parallel.step(
            x,
            y,
            (xs, ys) => this.shard(xs, ys),
            (k) => this.seedsFor(microIndex, k),
          )
        : this.shard(x, y);
    } finally {
      tf.dispose([x, y]);
    }
    const { value, hits, grads } = out;
    const checkGrads = this.guard?.config.checkGradients;
    // one host read for the three scalars
    const packed = tf.tidy(() => tf.stack([value, hits, checkGrads ? tf.cast(allFinite(grads), 'float32') : tf.scalar(1)]));
    const [loss, hit, finite] = Array.from(await packed.data());
    tf.dispose([value, hits, packed]);
    return { loss, hit, gradsFinite: finite === 1, grads };
  }

  /** Worker threads for the gradients, when asked for and worth it; one thread (with the reason logged) otherwise. */
  private async startThreads(): Promise<void> {
    const threads = this.opts.threads ?? 1;
    if (threads <= 1 || this.parallel) return;
    if (tf.getBackend() !== 'wasm') return;
    const convs = flatLayers(this.suffix).some((l) => /Conv/.test(l.getClassName()));
    if (!convs) return; // a head on cached features: a step takes milliseconds, a thread would cost more
    try {
      this.parallel = await ParallelGradients.create(this.suffix, { threads, vars: this.vars, labelSmoothing: this.opts.labelSmoothing ?? 0 });
    } catch (e) {
      this.log(`warning: training on one thread: the gradient workers did not start (${(e as Error).message})`);
    }
  }

  private async stopThreads(): Promise<void> {
    const p = this.parallel;
    this.parallel = null;
    await p?.dispose();
  }

  /** Tensors (count and bytes) held by each gradient worker after its last step (empty on one thread). */
  get workerMemory(): Array<{ numTensors: number; numBytes: number }> {
    return this.parallel ? this.parallel.workerMemory.map((m) => ({ ...m })) : [];
  }

  /** Threads computing gradients in the running fit (1 outside fit or when the workers did not start). */
  get threads(): number {
    return this.parallel ? this.parallel.threads : 1;
  }

  async fit(): Promise<FitResult> {
    await this.startThreads();
    this.fitting = true;
    try {
      return await this.fitLoop();
    } finally {
      this.fitting = false;
      this.folded?.dispose();
      this.folded = undefined;
      await this.stopThreads();
    }
  }

  private async fitLoop(): Promise<FitResult> {
    const bpe = this.batchesPerEpoch(this.data.train);
    const spe = Math.ceil(bpe / this.accumulate);
    for (const cb of this.callbacks) await cb.onTrainBegin?.({ epochs: this.opts.epochs, batchesPerEpoch: spe, startEpoch: this.epoch, startStep: this.step });
    let stoppedEarly: string | undefined = this.stoppedEarly ?? undefined;
    for (; !stoppedEarly && this.epoch < this.opts.epochs; ) {
      const epoch = this.epoch;
      const t0 = Date.now();
      for (const cb of this.callbacks) await cb.onEpochBegin?.(epoch);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let stepInEpoch = 0;
      let lrs: Record<string, number> = {};
      let pending: Pending | null = null;
      let rolledBack = false;
      // set from inside apply(): a holder, so the compiler does not narrow it to undefined
      const ctl: { stop?: StopRequest } = {};

      const apply = async (p: Pending): Promise<void> => {
        const factor = this.lr.factor(this.step, epoch) * (this.guard ? this.guard.multiplier : 1);
        // accumulate 1: the batch's own mean gradient, untouched; else the image-weighted mean over the batches
        const grads = p.micro === 1 && this.accumulate === 1 ? p.grads : tf.tidy(() => mapValues(p.grads, (g) => tf.div(g, p.examples)));
        const result = this.optimizer.step(grads, this.vars, factor, { norms: this.opts.monitorNorms });
        tf.dispose(p.grads);
        if (grads !== p.grads) tf.dispose(grads);
        lrs = result.lrs;
        lossSum += p.lossSum;
        correct += p.hits;
        seen += p.examples;
        const updateRatios = result.norms
          ? Object.fromEntries(Object.entries(result.norms.groups).map(([g, n]) => [g, n.weight > 0 ? n.update / n.weight : 0]))
          : undefined;
        for (const cb of this.callbacks) {
          const r = await cb.onBatchEnd?.({
            epoch,
            step: this.step,
            batchInEpoch: stepInEpoch,
            batchesPerEpoch: spe,
            loss: p.lossSum / p.examples,
            accuracy: p.hits / p.examples,
            examples: p.examples,
            lrs,
            updateRatios,
          });
          if (r?.stop) ctl.stop = r;
        }
        this.step++;
        stepInEpoch++;
      };

      const opts = {
        size: this.opts.size,
        batch: this.opts.batch,
        shuffle: true,
        flip: this.opts.flip,
        hflip: this.opts.hflip,
        augment: this.opts.augment,
        balanced: this.opts.balanced,
      };
      for await (const b of rawBatches(this.data, this.data.train, opts, this.rng)) {
        const micro = pending ? pending.micro : 0;
        // the state before a step's first batch is what the guard rolls back to, once that batch checks out
        const snapshot = this.good !== null && micro === 0 && (stepInEpoch === 0 || this.step % this.guard!.config.snapshotEvery === 0 || !this.good.available);
        if (snapshot) this.good!.stage(this.step);
        const r = await this.forwardBackward(b, this.step * this.accumulate + micro);
        const problem = this.guard ? this.guard.check(r.loss, r.gradsFinite) : Number.isFinite(r.loss) ? null : `loss is ${r.loss}`;
        if (problem) {
          tf.dispose(r.grads);
          if (pending) tf.dispose(pending.grads);
          pending = null;
          if (!this.guard) {
            throw new TrainingError(
              `loss became ${r.loss} at epoch ${epoch + 1}, step ${this.step}: the learning rates are too high for this batch size; ` +
                'nothing from this step was applied or written (lower lr, or keep lr.scaling=linear)',
            );
          }
          const ev = this.guard.diverged(problem, { step: this.step, epoch });
          this.good!.restore();
          rolledBack = true;
          this.log(
            `warning: divergence at epoch ${epoch + 1}, step ${this.step} (${problem}): rolled back to the weights of step ${this.good!.step} ` +
              `and cut every group's rate to ×${ev.multiplier.toPrecision(3)} of the schedule (retry ${this.guard.getState().retries}/${this.guard.config.maxRetries})`,
          );
          continue;
        }
        if (snapshot) this.good!.commit();
        this.guard?.accept(r.loss);
        if (!pending) {
          pending = { grads: r.grads, examples: b.n, lossSum: r.loss * b.n, hits: r.hit, micro: 1 };
          if (this.accumulate > 1) {
            // keep the sum as Σ n_i·g_i so a short last batch weighs what it holds
            const scaled = tf.tidy(() => mapValues(r.grads, (g) => tf.mul(g, b.n)));
            tf.dispose(r.grads);
            pending.grads = scaled;
          }
        } else {
          const prev: Record<string, tf.Tensor> = pending.grads;
          pending.grads = tf.tidy(() => mapValues(prev, (g, k) => (r.grads[k] ? tf.add(g, tf.mul(r.grads[k], b.n)) : tf.clone(g))));
          tf.dispose(prev);
          tf.dispose(r.grads);
          pending.examples += b.n;
          pending.lossSum += r.loss * b.n;
          pending.hits += r.hit;
          pending.micro += 1;
        }
        if (pending.micro === this.accumulate) {
          const p: Pending = pending;
          pending = null;
          await apply(p);
          if (ctl.stop) break;
        }
      }
      if (pending && !ctl.stop) await apply(pending);
      if (ctl.stop) {
        stoppedEarly = ctl.stop.reason ?? 'stopped by a callback';
        break;
      }
      // every step of this epoch was rolled back (an epoch of one batch): run the epoch again at the cut rate;
      // the guard's retry limit bounds how often
      if (seen === 0 && rolledBack) continue;
      if (seen === 0) throw new TrainingError('no training image could be decoded');
      const val = this.data.val.length ? (await this.evaluate(this.data.val)).metrics : undefined;
      this.epoch++;
      const info: EpochInfo = {
        epoch,
        step: this.step,
        train: { loss: lossSum / seen, accuracy: correct / seen },
        val,
        seconds: (Date.now() - t0) / 1000,
        numTensors: tf.memory().numTensors,
        lrs,
      };
      this.history.push(info);
      const metrics: Record<string, number> = { loss: info.train.loss, accuracy: info.train.accuracy };
      if (val) Object.assign(metrics, { val_loss: val.loss, val_accuracy: val.accuracy });
      const requests: StopRequest[] = [];
      const plateau = this.lr.epochEnd?.(epoch, metrics);
      if (plateau) requests.push(plateau);
      for (const cb of this.callbacks) {
        const r = await cb.onEpochEnd?.(info);
        if (r) requests.push(r);
      }
      const stop = requests.find((r) => r.stop);
      if (stop) stoppedEarly = stop.reason ?? 'stopped by a callback';
      this.stoppedEarly = stoppedEarly ?? null;
      await this.opts.onEpochCommitted?.(this, info, this.stoppedEarly);
    }
    for (const cb of this.callbacks) await cb.onTrainEnd?.({ epochs: this.epoch, stoppedEarly });
    return { epochs: this.epoch, history: this.history.map((h) => ({ ...h })), stoppedEarly, guardEvents: this.guard ? [...this.guard.events] : [] };
  }

  /** Loss, accuracy and the confusion matrix (rows: true class, columns: predicted) over `examples`. */
  async evaluate(examples: Example[]): Promise<{ metrics: EpochMetrics; confusion: number[][] }> {
    const k = this.net.classes.length;
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    let lossSum = 0;
    let n = 0;
    const opts = { size: this.opts.size, batch: this.opts.batch, shuffle: false, flip: false };
    // inside fit, one folded copy is rebuilt only once and refreshed with the moved weights each epoch: building a
    // new model every epoch grew the JS heap (about 0.2 MB an epoch in the 50-epoch soak); outside fit, a copy per call
    let folded: FoldedModel | null;
    if (this.fitting) {
      if (this.folded === undefined) this.folded = FoldedModel.create(this.suffix);
      else this.folded?.refresh();
      folded = this.folded;
    } else {
      folded = FoldedModel.create(this.suffix);
    }
    const model = folded?.model ?? this.suffix;
    try {
      for await (const b of rawBatches(this.data, examples, opts, null)) {
        const x = this.inputs(b);
        const [lossT, predT] = tf.tidy(() => {
          const logits = model.apply(x, { training: false }) as tf.Tensor2D;
          const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), k);
          return [tf.losses.softmaxCrossEntropy(y, logits, undefined, undefined, tf.Reduction.SUM), tf.argMax(logits, 1)];
        });
        lossSum += (await lossT.data())[0];
        const preds = await predT.data();
        tf.dispose([x, lossT, predT]);
        b.labels.forEach((t, i) => confusion[t][preds[i]]++);
        n += b.n;
      }
    } finally {
      if (!this.fitting) folded?.dispose();
    }
    const correct = confusion.reduce((s, row, i) => s + row[i], 0);
    return { metrics: { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN }, confusion };
  }
}

function mapValues(o: Record<string, tf.Tensor>, f: (t: tf.Tensor, k: string) => tf.Tensor): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v, k)]));
}

import * as tf from '@tensorflow/tfjs';
import { TrainingError } from '../errors';
import { rawBatches, type RawBatch } from '../data/batches';
import { preprocessBatch } from '../data/preprocess';
import { Rng } from '../data/rng';
import type { DataSource, Example } from '../data/source';
import type { Network } from '../models/network';
import type { StepResult } from '../optim/types';
import { namedVariableGrads } from '../optim/named';
import { FeatureCache } from './feature-cache';
import type { Callback, EpochInfo, EpochMetrics, StopRequest } from './callbacks';

/** The optimizer as the loop sees it: named gradients in, updates applied. */
export interface StepOptimizer {
  step(grads: Record<string, tf.Tensor>, vars: Record<string, tf.Variable>, lrFactor: number, opts?: { norms?: boolean }): StepResult;
}

/** The learning-rate multiplier over time, shared by every group so their ratios hold. */
export interface LrPolicy {
  factor(step: number, epoch: number): number;
  /** Fed the monitored metric after each epoch (reduce-on-plateau lives here). */
  epochEnd?(epoch: number, metric: number): StopRequest;
}

export interface TrainerOptions {
  epochs: number;
  batch: number;
  size: number;
  flip: boolean;
  seed: number;
  /** Leading backbone stages that are frozen: their outputs are cached (0 = none). */
  cachedStages: number;
  /** Bytes of cached prefix activations kept in memory before spilling to `spillDir`. */
  cacheBytes: number;
  spillDir: string | null;
  /** Ask the optimizer for ‖Δw‖ and ‖w‖ every step (one small host read). */
  monitorNorms: boolean;
}

export interface FitResult {
  epochs: number;
  history: EpochInfo[];
  stoppedEarly?: string;
}

/**
 * The small loop: batches in, loss and gradients of the trainable variables only, one optimizer
 * step, callbacks around it. Everything else (progress, metrics files, early stopping,
 * checkpoints) is a Callback.
 */
export class Trainer {
  private readonly prefix: tf.LayersModel | null;
  private readonly suffix: tf.LayersModel;
  private readonly cache: FeatureCache | null;
  readonly rng: Rng;
  step = 0;
  epoch = 0;

  constructor(
    private readonly net: Network,
    private readonly data: DataSource,
    private readonly vars: Record<string, tf.Variable>,
    private readonly optimizer: StepOptimizer,
    private readonly lr: LrPolicy,
    private readonly callbacks: Callback[],
    private readonly opts: TrainerOptions,
    parts: { prefix: tf.LayersModel | null; suffix: tf.LayersModel },
  ) {
    this.prefix = parts.prefix;
    this.suffix = parts.suffix;
    this.rng = new Rng(opts.seed);
    this.cache = this.prefix
      ? new FeatureCache(this.prefix.outputs[0].shape.slice(1) as number[], opts.cacheBytes, opts.spillDir)
      : null;
  }

  get featureCache(): FeatureCache | null {
    return this.cache;
  }

  /** Network input for a batch: images, or the cached frozen-prefix activations. */
  private inputs(b: RawBatch): tf.Tensor {
    const images = () => preprocessBatch(b.pixels, b.n, this.opts.size, this.net.backbone.preprocess);
    if (!this.prefix || !this.cache) return images();
    return this.cache.batch(b.keys, () =>
      tf.tidy(() => this.prefix!.apply(images(), { training: false }) as tf.Tensor),
    );
  }

  private batchesPerEpoch(examples: Example[]): number {
    return Math.ceil(examples.length / this.opts.batch);
  }

  async fit(): Promise<FitResult> {
    const history: EpochInfo[] = [];
    const bpe = this.batchesPerEpoch(this.data.train);
    for (const cb of this.callbacks) await cb.onTrainBegin?.({ epochs: this.opts.epochs, batchesPerEpoch: bpe, startEpoch: this.epoch });
    let stoppedEarly: string | undefined;
    for (; this.epoch < this.opts.epochs; ) {
      const epoch = this.epoch;
      const t0 = Date.now();
      for (const cb of this.callbacks) await cb.onEpochBegin?.(epoch);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batchInEpoch = 0;
      let lrs: Record<string, number> = {};
      const opts = { size: this.opts.size, batch: this.opts.batch, shuffle: true, flip: this.opts.flip };
      for await (const b of rawBatches(this.data, this.data.train, opts, this.rng)) {
        const factor = this.lr.factor(this.step, epoch);
        const x = this.inputs(b);
        const y = tf.tidy(() => tf.oneHot(tf.tensor1d(b.labels, 'int32'), this.net.classes.length));
        let hits: tf.Scalar | undefined;
        const { value, grads } = namedVariableGrads(() => {
          const logits = this.suffix.apply(x, { training: true }) as tf.Tensor2D;
          hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), "float32"))) as tf.Scalar;
          return tf.losses.softmaxCrossEntropy(y, logits) as tf.Scalar;
        }, this.vars);
        const loss = (await value.data())[0];
        const hit = (await hits!.data())[0];
        tf.dispose([x, y, value, hits!]);
        if (!Number.isFinite(loss)) {
          tf.dispose(grads);
          throw new TrainingError(
            `loss became ${loss} at epoch ${epoch + 1}, step ${this.step}: the learning rates are too high for this batch size; ` +
              'nothing from this step was applied or written (lower lr, or keep lr.scaling=linear)',
          );
        }
        const result = this.optimizer.step(grads, this.vars, factor, { norms: this.opts.monitorNorms });
        tf.dispose(grads);
        lrs = result.lrs;
        lossSum += loss * b.n;
        correct += hit;
        seen += b.n;
        const updateRatios = result.norms
          ? Object.fromEntries(Object.entries(result.norms.groups).map(([g, n]) => [g, n.weight > 0 ? n.update / n.weight : 0]))
          : undefined;
        let stepStop: StopRequest | undefined;
        for (const cb of this.callbacks) {
          const r = await cb.onBatchEnd?.({
            epoch,
            step: this.step,
            batchInEpoch,
            batchesPerEpoch: bpe,
            loss,
            accuracy: hit / b.n,
            examples: b.n,
            lrs,
            updateRatios,
          });
          if (r && r.stop) stepStop = r;
        }
        this.step++;
        batchInEpoch++;
        if (stepStop) {
          stoppedEarly = stepStop.reason ?? 'stopped by a callback';
          break;
        }
      }
      if (stoppedEarly) break;
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
      history.push(info);
      const requests: StopRequest[] = [];
      const plateau = this.lr.epochEnd?.(epoch, (val ?? info.train).loss);
      if (plateau) requests.push(plateau);
      for (const cb of this.callbacks) {
        const r = await cb.onEpochEnd?.(info);
        if (r) requests.push(r);
      }
      const stop = requests.find((r) => r.stop);
      if (stop) {
        stoppedEarly = stop.reason ?? 'stopped by a callback';
        break;
      }
    }
    for (const cb of this.callbacks) await cb.onTrainEnd?.({ epochs: this.epoch, stoppedEarly });
    return { epochs: this.epoch, history, stoppedEarly };
  }

  /** Loss, accuracy and the confusion matrix (rows: true class, columns: predicted) over `examples`. */
  async evaluate(examples: Example[]): Promise<{ metrics: EpochMetrics; confusion: number[][] }> {
    const k = this.net.classes.length;
    const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    let lossSum = 0;
    let n = 0;
    const opts = { size: this.opts.size, batch: this.opts.batch, shuffle: false, flip: false };
    for await (const b of rawBatches(this.data, examples, opts, null)) {
      const x = this.inputs(b);
      const [lossT, predT] = tf.tidy(() => {
        const logits = this.suffix.apply(x, { training: false }) as tf.Tensor2D;
        const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), k);
        return [tf.losses.softmaxCrossEntropy(y, logits, undefined, undefined, tf.Reduction.SUM), tf.argMax(logits, 1)];
      });
      lossSum += (await lossT.data())[0];
      const preds = await predT.data();
      tf.dispose([x, lossT, predT]);
      b.labels.forEach((t, i) => confusion[t][preds[i]]++);
      n += b.n;
    }
    const correct = confusion.reduce((s, row, i) => s + row[i], 0);
    return { metrics: { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN }, confusion };
  }
}

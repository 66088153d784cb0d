/**
 * The trainer's per-epoch validation on more than one thread: this thread and the workers of an InferencePool each
 * run whole batches of the (BatchNorm-folded) model, the results land in batch order, and the loss and the confusion
 * matrix are then added up here exactly as `evaluate` adds them (same logits, same loss kernel, same order), so the
 * metrics equal the one-thread path's. The pool starts at the first validation of a fit, gets the refreshed weights
 * (`setWeights`) at every later one, and is disposed when the fit ends.
 *
 * When the fit trains on gradient workers, the pool runs on those (InferencePool.hostedOn), which sit idle during
 * validation anyway: a pool of its own would be one more tfjs-wasm instance, and each keeps its heap's high-water
 * mark (~0.3 GB for a full-backbone ResNet-18 at 224, batch 16). The workers start only where none train.
 */
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { rawBatches, type RawBatch } from '../data/batches';
import type { DataSource, Example } from '../data/source';
import { InferencePool } from '../engine/inference-pool';
import { resolveInferenceThreads } from '../engine/inference-threads';
import { loadsFrom, runInOrder } from '../infer/pipeline';
import type { Preprocess } from '../models/types';
import { evaluate, type EvaluateOptions, type Evaluation } from './evaluate';

/** Batches decoded ahead per lane, as predict keeps them. */
const PREFETCH_PER_LANE = 2;

export interface ParallelEvalOptions {
  /** `auto` or a count, resolved per pass by resolveInferenceThreads (as predict resolves `--threads`). */
  threads: 'auto' | number;
  size: number;
  preprocess: Preprocess;
  log: (line: string) => void;
  /** Threads that can run batches between training steps (the fit's gradient workers); none: the pool starts its own. */
  lentThreads?: () => readonly Worker[];
}

/** Where the last validation pass ran besides this thread. */
export type ValidationPlacement = 'this thread' | 'gradient workers' | 'own workers';

/** One batch's logits and labels, computed on whichever lane took it. */
interface BatchLogits {
  logits: Float32Array;
  shape: [number, number];
  labels: number[];
}

export class ParallelEvaluator {
  private pool: InferencePool | null = null;
  /** The model the pool was started from; a pass over another model (outside the fit's folded copy) runs alone. */
  private poolModel: tf.LayersModel | null = null;
  /** The workers could not start (say, a model that does not save): every later pass runs on this thread. */
  private unavailable = false;

  constructor(private readonly o: ParallelEvalOptions) {}

  /** Threads the last pass ran on (1 before any). */
  threads = 1;
  placement: ValidationPlacement = 'this thread';
  private poolLent = false;

  /** Worker tensor counts after their last batch (empty without a pool): leak checks see into the threads. */
  get workerTensors(): number[] {
    return this.pool?.workerTensors ?? [];
  }

  async evaluate(model: tf.LayersModel, data: DataSource, examples: Example[], inputs: (b: RawBatch) => tf.Tensor, opts: EvaluateOptions): Promise<Evaluation> {
    const count = Math.ceil(examples.length / opts.batch);
    const choice = resolveInferenceThreads(this.o.threads, tf.getBackend(), count);
    const pool = choice.threads > 1 && !this.unavailable ? await this.poolFor(model, choice.threads - 1) : null;
    this.threads = 1 + (pool?.threads ?? 0);
    this.placement = !pool ? 'this thread' : this.poolLent ? 'gradient workers' : 'own workers';
    if (!pool) return evaluate(model, data, examples, inputs, opts);
    const lanes = this.threads;
    const batches = rawBatches(data, examples, { size: opts.size, batch: opts.batch, shuffle: false, flip: false }, null);
    const outs = await runInOrder(count, loadsFrom(batches), (b, _i, lane) => this.runBatch(model, pool, b, inputs, lane), {
      lanes,
      depth: PREFETCH_PER_LANE * lanes,
    });
    return sumUp(outs, opts.classes);
  }

  private async runBatch(model: tf.LayersModel, pool: InferencePool, b: RawBatch, inputs: (b: RawBatch) => tf.Tensor, lane: number): Promise<BatchLogits> {
    const x = inputs(b);
    try {
      if (lane === 0) {
        // predict, as the workers run it: it frees the activations layer by layer (see evaluate.ts)
        const y = tf.tidy(() => model.predict(x, { batchSize: b.n }) as tf.Tensor2D);
        const logits = (await y.data()) as Float32Array;
        const shape = y.shape as [number, number];
        y.dispose();
        return { logits, shape, labels: b.labels };
      }
      // a copy: the buffer is transferred to the worker, and dataSync may hand back the backend's own storage
      const xs = (x.dataSync() as Float32Array).slice();
      const shape = x.shape.slice();
      x.dispose();
      const logits = await pool.run({ x: xs, shape });
      return { logits, shape: [b.n, logits.length / b.n], labels: b.labels };
    } finally {
      if (!x.isDisposed) x.dispose();
    }
  }

  private async poolFor(model: tf.LayersModel, workers: number): Promise<InferencePool | null> {
    const lent = (this.o.lentThreads?.() ?? []).slice(0, workers);
    const count = lent.length || workers;
    if (this.pool && this.poolModel === model && this.pool.threads === count && this.poolLent === lent.length > 0) {
      await this.pool.setWeights(model);
      return this.pool;
    }
    await this.dispose();
    const opts = { size: this.o.size, preprocess: this.o.preprocess };
    try {
      this.pool = lent.length ? await InferencePool.hostedOn(lent, model, opts) : await InferencePool.create(model, { threads: workers, ...opts });
      this.poolModel = model;
      this.poolLent = lent.length > 0;
    } catch (e) {
      this.unavailable = true;
      this.o.log(`validation: worker threads unavailable (${String((e as Error)?.message ?? e).split('\n')[0]}); validating on one thread`);
    }
    return this.pool;
  }

  async dispose(): Promise<void> {
    const p = this.pool;
    this.pool = null;
    this.poolModel = null;
    await p?.dispose();
  }
}

/** Loss and confusion over the batches in order, with evaluate's own arithmetic (per-batch summed loss, then the mean). */
async function sumUp(outs: BatchLogits[], k: number): Promise<Evaluation> {
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let lossSum = 0;
  let n = 0;
  for (const o of outs) {
    const [lossT, predT] = tf.tidy(() => {
      const logits = tf.tensor2d(o.logits, o.shape);
      const y = tf.oneHot(tf.tensor1d(o.labels, 'int32'), k);
      return [tf.losses.softmaxCrossEntropy(y, logits, undefined, undefined, tf.Reduction.SUM), tf.argMax(logits, 1)];
    });
    lossSum += (await lossT.data())[0];
    const preds = await predT.data();
    tf.dispose([lossT, predT]);
    o.labels.forEach((t, i) => confusion[t][preds[i]]++);
    n += o.labels.length;
  }
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  return { metrics: { loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN }, confusion };
}

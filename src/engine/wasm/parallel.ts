import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { batchNormModeOf, isBatchNorm, type BatchNormMode } from '../../models/batchnorm';
import { flatLayers } from '../../optim/named';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, wasmHeap } from './module';

/*
 * Data-parallel gradients over both cores. tfjs-wasm's threaded build only spreads the XNNPACK kernels
 * (forward convolutions and matmuls: 20-26% of a training step here), so at most ~1.15x on 2 cores; a
 * worker thread that runs the whole step on its share of the batch can reach ~2x. The calling thread
 * computes shard 0 itself while workers compute the others; gradients are weighted by shard size and
 * summed, so the result is the gradient of the mean loss over the whole batch, except that BatchNorm
 * in training mode sees per-shard batch statistics (as in data-parallel PyTorch without SyncBN). The
 * moving statistics of those layers are then the shard-weighted mean of every shard's update, so they
 * follow the whole batch rather than shard 0 alone.
 * Weights go to the workers through one SharedArrayBuffer each step; gradients come back the same way.
 */

export interface ParallelGradientsOptions {
  /** Threads in all, the calling one included (default 2). */
  threads?: number;
  /** Label smoothing of the softmax cross-entropy (default 0). */
  labelSmoothing?: number;
  /**
   * The variables to differentiate, keyed by the caller's names (default: the model's trainable weights
   * keyed by their runtime names). Each must be one of the model's weights.
   */
  vars?: Record<string, tf.Variable>;
}

/** What one shard's forward and backward pass yields; the loss is the shard's mean. */
export interface ShardOutput {
  value: tf.Scalar;
  hits: tf.Scalar;
  grads: Record<string, tf.Tensor>;
}

export interface ShardResult {
  loss: number;
  grads: tf.NamedTensorMap;
}

type Msg = { type: 'ready' } | { type: 'done'; loss: number; hits: number; numTensors: number; numBytes: number } | { type: 'error'; message: string };

/** What a worker needs to rebuild the model and take part in steps. */
export interface WorkerInit {
  topology: object;
  weightBuf: SharedArrayBuffer;
  gradBuf: SharedArrayBuffer;
  statsBuf: SharedArrayBuffer;
  shapes: number[][];
  /** Stable weight names, to check the worker's copy lines up with ours. */
  names: string[];
  trainableIdx: number[];
  /** Indices (into the weights) of the moving statistics that batch-mode BatchNorm layers update. */
  statIdx: number[];
  bnModes: Record<string, BatchNormMode>;
  labelSmoothing: number;
}

export interface StepMsg {
  type: 'step';
  x: Float32Array;
  xShape: number[];
  y: Float32Array;
  yShape: number[];
  weight: number;
  /** One seed per Dropout layer, in flatLayers order. */
  seeds: number[];
  /** Indices (into `trainableIdx`) of the variables this step differentiates; null: all of them. */
  active: number[] | null;
}

/**
 * A float32 tensor's values without dataSync's copies: on wasm a view into the heap, to be read before
 * anything else allocates (a heap growth detaches it); elsewhere dataSync's array. dataSync on wasm cost
 * ~160 ms a step for ResNet-18's 11.7M weights, serial time the other thread spent waiting.
 */
export function valuesOf(t: tf.Tensor): Float32Array {
  if (tf.getBackend() === 'wasm') {
    const b = tf.backend() as unknown as BackendWasm;
    return new Float32Array(wasmHeap(b).buffer, offsetOf(b, t.dataId), t.size);
  }
  return t.dataSync() as Float32Array;
}

export interface Layout {
  offsets: number[];
  sizes: number[];
  total: number;
}

/** Where each tensor of `shapes` lies in one flat float32 buffer, in order. */
export function layoutOf(shapes: number[][]): Layout {
  const offsets: number[] = [];
  const sizes: number[] = [];
  let total = 0;
  for (const shape of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    offsets.push(total);
    sizes.push(size);
    total += size;
  }
  return { offsets, sizes, total };
}

/** The loss every shard minimises: mean softmax cross-entropy over the shard (logits model), and its hits. */
export function shardLoss(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, labelSmoothing: number): { loss: tf.Scalar; hits: tf.Scalar } {
  const logits = model.apply(x, { training: true }) as tf.Tensor;
  const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.argMax(y, 1)), 'float32')) as tf.Scalar;
  return { loss: tf.losses.softmaxCrossEntropy(y, logits, undefined, labelSmoothing) as tf.Scalar, hits };
}

/** Batch rows [start, end) of shard k of n. */
export function shardBounds(batch: number, shards: number): number[] {
  return Array.from({ length: shards + 1 }, (_, i) => Math.round((i * batch) / shards));
}

/** Sets each Dropout layer's seed (tfjs draws the same mask for the same seed). */
export function seedDropouts(model: tf.LayersModel, seeds: number[]): void {
  const drops = flatLayers(model).filter((l) => l.getClassName() === 'Dropout');
  drops.forEach((d, i) => {
    if (seeds[i] !== undefined) (d as unknown as { seed: number }).seed = seeds[i];
  });
}

export class ParallelGradients {
  private readonly workers: Worker[] = [];
  private readonly gradBufs: SharedArrayBuffer[] = [];
  private readonly statsBufs: SharedArrayBuffer[] = [];
  private readonly weightBuf: SharedArrayBuffer;
  private readonly all: tf.LayerVariable[];
  private readonly allLayout: Layout;
  /** Caller's name and index into `all` of each differentiated variable. */
  private readonly keys: string[];
  private readonly trainableIdx: number[];
  private readonly trainLayout: Layout;
  private readonly statIdx: number[];
  private readonly statLayout: Layout;
  private readonly vars: Record<string, tf.Variable>;
  /** The last `active` subset asked for, and its indices into `keys` (the subset changes once per phase, if ever). */
  private activeOf: { vars: Record<string, tf.Variable>; idx: number[] } | null = null;
  private broken: Error | null = null;
  /** Each worker's tf.memory() after its last step: leak checks can see into the threads. */
  readonly workerMemory: Array<{ numTensors: number; numBytes: number }> = [];

  private constructor(
    private readonly model: tf.LayersModel,
    private readonly opts: Required<Omit<ParallelGradientsOptions, 'vars'>>,
    vars?: Record<string, tf.Variable>,
  ) {
    this.all = model.weights;
    const runtime = this.all.map((w) => w.read() as tf.Variable);
    this.vars = vars ?? Object.fromEntries(model.trainableWeights.map((w) => [(w.read() as tf.Variable).name, w.read() as tf.Variable]));
    this.keys = Object.keys(this.vars);
    this.trainableIdx = this.keys.map((k) => {
      const i = runtime.indexOf(this.vars[k]);
      if (i < 0) throw new Error(`variable "${k}" is not a weight of the model`);
      return i;
    });
    this.allLayout = layoutOf(this.all.map((v) => v.shape as number[]));
    this.trainLayout = layoutOf(this.trainableIdx.map((i) => this.all[i].shape as number[]));
    this.statIdx = [];
    for (const layer of flatLayers(model)) {
      if (!isBatchNorm(layer) || (batchNormModeOf(layer) ?? 'batch') !== 'batch') continue;
      for (const w of layer.nonTrainableWeights) this.statIdx.push(this.all.indexOf(w));
    }
    if (this.statIdx.some((i) => i < 0)) throw new Error('a BatchNorm statistic is not among the model weights');
    this.statLayout = layoutOf(this.statIdx.map((i) => this.all[i].shape as number[]));
    this.weightBuf = new SharedArrayBuffer(4 * this.allLayout.total);
  }

  /** Starts threads-1 workers, each with a copy of the model built from its JSON topology. */
  static async create(model: tf.LayersModel, options: ParallelGradientsOptions = {}): Promise<ParallelGradients> {
    const opts = { threads: options.threads ?? 2, labelSmoothing: options.labelSmoothing ?? 0 };
    const pg = new ParallelGradients(model, opts, options.vars);
    const bnModes: Record<string, BatchNormMode> = {};
    for (const layer of flatLayers(model)) {
      const mode = batchNormModeOf(layer);
      if (mode) bnModes[layer.name] = mode;
    }
    const topology = model.toJSON(null, false);
    // from the sources (tests, tsx) the worker is TypeScript and needs tsx's loader; from dist it is plain JS
    const fromSources = __filename.endsWith('.ts');
    const script = path.join(__dirname, fromSources ? 'parallel-worker.ts' : 'parallel-worker.js');
    const execArgv = fromSources ? ['--require', require.resolve('tsx/cjs')] : [];
    try {
      await Promise.all(
        Array.from({ length: opts.threads - 1 }, async () => {
          const gradBuf = new SharedArrayBuffer(4 * pg.trainLayout.total);
          const statsBuf = new SharedArrayBuffer(4 * Math.max(1, pg.statLayout.total));
          const init: WorkerInit = {
            topology: topology as object,
            weightBuf: pg.weightBuf,
            gradBuf,
            statsBuf,
            shapes: pg.all.map((v) => v.shape as number[]),
            names: pg.all.map((v) => v.originalName),
            trainableIdx: pg.trainableIdx,
            statIdx: pg.statIdx,
            bnModes,
            labelSmoothing: opts.labelSmoothing,
          };
          const w = new Worker(script, { execArgv, workerData: init });
          pg.workers.push(w);
          pg.gradBufs.push(gradBuf);
          pg.statsBufs.push(statsBuf);
          await pg.next(w);
        }),
      );
    } catch (e) {
      await pg.dispose();
      throw e;
    }
    return pg;
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * The worker threads, for an InferencePool to run batches on between steps (InferencePool.hostedOn): they answer
   * its messages too. Nothing may be posted to them while a step is under way.
   */
  get workerThreads(): readonly Worker[] {
    return this.workers;
  }

  private next(w: Worker): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const onMsg = (m: Msg): void => {
        cleanup();
        m.type === 'error' ? reject(new Error(`gradient worker: ${m.message}`)) : resolve(m);
      };
      const onErr = (e: Error): void => {
        cleanup();
        reject(e);
      };
      const onExit = (code: number): void => {
        cleanup();
        reject(new Error(`gradient worker exited with code ${code}`));
      };
      const cleanup = (): void => {
        w.off('message', onMsg);
        w.off('error', onErr);
        w.off('exit', onExit);
      };
      w.on('message', onMsg);
      w.on('error', onErr);
      w.on('exit', onExit);
    });
  }

  /**
   * One step over the batch: `local` computes shard 0 on this thread (it must differentiate exactly the
   * variables given at creation, or the `active` subset of them, under the same keys) while the workers compute
   * the others, seeded with `seeds(k)` for their Dropout layers. Returns the mean loss and gradients over the
   * whole batch and the total hits, as tensors the caller owns. A batch smaller than the thread count uses fewer
   * shards.
   */
  async step(
    x: tf.Tensor,
    y: tf.Tensor,
    local: (xs: tf.Tensor, ys: tf.Tensor) => ShardOutput,
    seeds: (shard: number) => number[] = () => [],
    active?: Record<string, tf.Variable>,
  ): Promise<ShardOutput> {
    if (this.broken) throw this.broken;
    const activeIdx = active ? this.indicesOf(active) : null;
    const B = x.shape[0];
    const n = Math.min(this.workers.length + 1, B);
    const bounds = shardBounds(B, n);
    // wasm copies a tensor's values into and out of its heap; other backends may share the arrays
    const heapCopies = tf.getBackend() === 'wasm';
    const wv = new Float32Array(this.weightBuf);
    if (n > 1) this.all.forEach((v, i) => wv.set(valuesOf(v.read()), this.allLayout.offsets[i]));
    const pending: Array<Promise<Msg>> = [];
    for (let k = 1; k < n; k++) {
      const size = bounds[k + 1] - bounds[k];
      const [xs, ys] = tf.tidy(() => [x.slice(bounds[k], size), y.slice(bounds[k], size)]);
      const msg: StepMsg = {
        type: 'step',
        x: xs.dataSync() as Float32Array,
        xShape: xs.shape,
        y: ys.dataSync() as Float32Array,
        yShape: ys.shape,
        weight: size / B,
        seeds: seeds(k),
        active: activeIdx,
      };
      tf.dispose([xs, ys]);
      const w = this.workers[k - 1];
      pending.push(this.next(w));
      // wasm's dataSync returns a copy we may hand over; the cpu backend's may share the batch's memory
      w.postMessage(msg, heapCopies ? [msg.x.buffer as ArrayBuffer, msg.y.buffer as ArrayBuffer] : []);
    }
    const w0 = (bounds[1] - bounds[0]) / B;
    const [xs0, ys0] = n > 1 ? tf.tidy(() => [x.slice(0, bounds[1]), y.slice(0, bounds[1])]) : [x, y];
    let out: ShardOutput;
    try {
      out = local(xs0, ys0);
    } catch (e) {
      // the workers must finish before anything else is posted to them
      await Promise.allSettled(pending);
      throw e;
    } finally {
      if (n > 1) tf.dispose([xs0, ys0]);
    }
    let done: Msg[];
    try {
      done = await Promise.all(pending);
    } catch (e) {
      tf.dispose([out.value, out.hits, ...Object.values(out.grads)]);
      this.broken = e as Error;
      throw e;
    }
    if (n === 1) return out;
    let lossRest = 0;
    let hitsRest = 0;
    done.forEach((m, k) => {
      if (m.type !== 'done') return;
      lossRest += m.loss;
      hitsRest += m.hits;
      this.workerMemory[k] = { numTensors: m.numTensors, numBytes: m.numBytes };
    });
    const combined: ShardOutput = tf.tidy(() => {
      const grads: Record<string, tf.Tensor> = {};
      for (const j of activeIdx ?? this.keys.keys()) {
        const key = this.keys[j];
        const g = out.grads[key];
        if (!g) continue; // not reached by the loss: absent on every shard
        const shape = g.shape;
        let acc = tf.mul(g, w0);
        for (let k = 0; k < n - 1; k++) {
          const view = new Float32Array(this.gradBufs[k], 4 * this.trainLayout.offsets[j], this.trainLayout.sizes[j]);
          acc = tf.add(acc, tf.tensor(heapCopies ? view : view.slice(), shape));
        }
        grads[key] = acc;
      }
      return {
        value: tf.add(tf.mul(out.value, w0), lossRest) as tf.Scalar,
        hits: tf.add(out.hits, hitsRest) as tf.Scalar,
        grads,
      };
    });
    tf.dispose([out.value, out.hits, ...Object.values(out.grads)]);
    this.averageStatistics(bounds, B, n, heapCopies);
    return combined;
  }

  /** Indices into `keys` of the variables of `active`, which must all be among those given at creation. */
  private indicesOf(active: Record<string, tf.Variable>): number[] {
    if (this.activeOf?.vars === active) return this.activeOf.idx;
    const idx = Object.keys(active).map((k) => {
      const j = this.keys.indexOf(k);
      if (j < 0 || this.vars[k] !== active[k]) throw new Error(`variable "${k}" was not given to the gradient workers at creation`);
      return j;
    });
    this.activeOf = { vars: active, idx };
    return idx;
  }

  /** Moving statistics ← shard-weighted mean of every shard's update (shard 0's is already in the model). */
  private averageStatistics(bounds: number[], B: number, n: number, heapCopies: boolean): void {
    if (!this.statIdx.length) return;
    tf.tidy(() => {
      this.statIdx.forEach((i, j) => {
        const v = this.all[i];
        let acc = tf.mul(v.read(), (bounds[1] - bounds[0]) / B);
        for (let k = 1; k < n; k++) {
          const view = new Float32Array(this.statsBufs[k - 1], 4 * this.statLayout.offsets[j], this.statLayout.sizes[j]);
          acc = tf.add(acc, tf.mul(tf.tensor(heapCopies ? view : view.slice(), v.shape as number[]), (bounds[k + 1] - bounds[k]) / B));
        }
        v.write(acc);
      });
    });
  }

  /** Gradient of the mean loss over the batch w.r.t. the variables, and that loss (what the bench times). */
  async gradients(x: tf.Tensor, y: tf.Tensor): Promise<ShardResult> {
    const vars = this.vars;
    const r = await this.step(x, y, (xs, ys) =>
      tf.tidy(() => {
        let hits: tf.Scalar | undefined;
        const { value, grads } = tf.variableGrads(
          () => {
            const s = shardLoss(this.model, xs, ys, this.opts.labelSmoothing);
            hits = tf.keep(s.hits);
            return s.loss;
          },
          this.keys.map((k) => vars[k]),
        );
        const named: Record<string, tf.Tensor> = {};
        for (const k of this.keys) if (grads[vars[k].name]) named[k] = grads[vars[k].name];
        return { value, hits: hits!, grads: named };
      }),
    );
    const loss = (await r.value.data())[0];
    tf.dispose([r.value, r.hits]);
    return { loss, grads: r.grads };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

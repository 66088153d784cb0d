import * as path from 'path';
import { Worker } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';

/*
 * Data-parallel gradients over both cores. tfjs-wasm's threaded build only spreads the XNNPACK kernels
 * (forward convolutions and matmuls: 20-26% of a training step here), so at most ~1.15x on 2 cores; a
 * worker thread that runs the whole step on its share of the batch can reach ~2x. The calling thread
 * computes shard 0 itself while workers compute the others; gradients are weighted by shard size and
 * summed, so the result is the gradient of the mean loss over the whole batch, except that BatchNorm
 * in training mode sees per-shard batch statistics (as in data-parallel PyTorch without SyncBN).
 * Weights go to the workers through one SharedArrayBuffer each step; gradients come back the same way.
 */

export interface ParallelGradientsOptions {
  /** Threads in all, the calling one included (default 2). */
  threads?: number;
  /** Label smoothing of the softmax cross-entropy (default 0). */
  labelSmoothing?: number;
}

export interface ShardResult { loss: number; grads: tf.NamedTensorMap }

type Msg =
  | { type: 'ready' }
  | { type: 'done'; loss: number }
  | { type: 'error'; message: string };

export interface Layout { offsets: number[]; sizes: number[]; total: number }

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

const shapesOf = (vars: tf.LayerVariable[]): number[][] => vars.map((v) => v.shape as number[]);

/** The loss every shard minimises: mean softmax cross-entropy over the shard (logits model). */
export function shardLoss(model: tf.LayersModel, x: tf.Tensor, y: tf.Tensor, labelSmoothing: number): tf.Scalar {
  const logits = model.apply(x, { training: true }) as tf.Tensor;
  return tf.losses.softmaxCrossEntropy(y, logits, undefined, labelSmoothing) as tf.Scalar;
}

export class ParallelGradients {
  private readonly workers: Worker[] = [];
  private readonly weightBuf: SharedArrayBuffer;
  private readonly gradBufs: SharedArrayBuffer[] = [];
  private readonly all: tf.LayerVariable[];
  private readonly trainable: tf.LayerVariable[];
  private readonly allLayout: Layout;
  private readonly trainLayout: Layout;

  private constructor(private readonly model: tf.LayersModel, private readonly opts: Required<ParallelGradientsOptions>) {
    this.all = model.weights;
    this.trainable = model.trainableWeights;
    this.allLayout = layoutOf(shapesOf(this.all));
    this.trainLayout = layoutOf(shapesOf(this.trainable));
    this.weightBuf = new SharedArrayBuffer(4 * this.allLayout.total);
  }

  /** Starts threads-1 workers, each with a copy of the model built from its JSON topology. */
  static async create(model: tf.LayersModel, options: ParallelGradientsOptions = {}): Promise<ParallelGradients> {
    const opts = { threads: options.threads ?? 2, labelSmoothing: options.labelSmoothing ?? 0 };
    const pg = new ParallelGradients(model, opts);
    const trainableIdx = pg.trainable.map((v) => pg.all.indexOf(v));
    const topology = model.toJSON(null, false);
    const script = path.join(__dirname, 'parallel-worker.ts');
    await Promise.all(Array.from({ length: opts.threads - 1 }, async () => {
      const gradBuf = new SharedArrayBuffer(4 * pg.trainLayout.total);
      const w = new Worker(script, {
        execArgv: ['--require', require.resolve('tsx/cjs')],
        workerData: { topology, weightBuf: pg.weightBuf, gradBuf, shapes: shapesOf(pg.all), trainableIdx },
      });
      pg.workers.push(w);
      pg.gradBufs.push(gradBuf);
      await pg.next(w);
    }));
    return pg;
  }

  private next(w: Worker): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const onMsg = (m: Msg): void => { cleanup(); m.type === 'error' ? reject(new Error(`gradient worker: ${m.message}`)) : resolve(m); };
      const onErr = (e: Error): void => { cleanup(); reject(e); };
      const cleanup = (): void => { w.off('message', onMsg); w.off('error', onErr); };
      w.on('message', onMsg);
      w.on('error', onErr);
    });
  }

  /**
   * Gradient of the mean loss over the batch w.r.t. the model's trainable weights, keyed by variable
   * name, plus that loss. x: [B, H, W, 3], y: one-hot [B, classes]. The caller owns the returned tensors.
   * Moving BatchNorm statistics are updated from shard 0 only.
   */
  async gradients(x: tf.Tensor, y: tf.Tensor): Promise<ShardResult> {
    const B = x.shape[0];
    const n = Math.min(this.workers.length + 1, B);
    const bounds = Array.from({ length: n + 1 }, (_, i) => Math.round((i * B) / n));
    // Current weights → shared buffer (workers copy them into their own heaps).
    const wv = new Float32Array(this.weightBuf);
    this.all.forEach((v, i) => wv.set(v.read().dataSync() as Float32Array, this.allLayout.offsets[i]));
    const pending: Array<Promise<Msg>> = [];
    for (let k = 1; k < n; k++) {
      const [xs, ys] = tf.tidy(() => [x.slice(bounds[k], bounds[k + 1] - bounds[k]), y.slice(bounds[k], bounds[k + 1] - bounds[k])]);
      const xd = xs.dataSync() as Float32Array;
      const yd = ys.dataSync() as Float32Array;
      const msg = { type: 'step', x: xd, xShape: xs.shape, y: yd, yShape: ys.shape, weight: (bounds[k + 1] - bounds[k]) / B, labelSmoothing: this.opts.labelSmoothing };
      tf.dispose([xs, ys]);
      const w = this.workers[k - 1];
      pending.push(this.next(w));
      w.postMessage(msg);
    }
    // Shard 0 here, concurrently with the workers.
    const w0 = (bounds[1] - bounds[0]) / B;
    const local = tf.tidy(() => {
      const xs = x.slice(0, bounds[1]);
      const ys = y.slice(0, bounds[1]);
      const { value, grads } = tf.variableGrads(() => shardLoss(this.model, xs, ys, this.opts.labelSmoothing),
        this.trainable.map((v) => v.read() as tf.Variable));
      const scaled: tf.NamedTensorMap = {};
      for (const k of Object.keys(grads)) scaled[k] = tf.keep(grads[k].mul(w0));
      return { loss: tf.keep(value.mul(w0)), grads: scaled };
    });
    const done = await Promise.all(pending);
    let loss = (await local.loss.data())[0];
    local.loss.dispose();
    const grads: tf.NamedTensorMap = {};
    this.trainable.forEach((v, i) => {
      const name = (v.read() as tf.Variable).name;
      const g = local.grads[name];
      let acc: tf.Tensor = g;
      for (let k = 0; k < n - 1; k++) {
        const view = new Float32Array(this.gradBufs[k], 4 * this.trainLayout.offsets[i], this.trainLayout.sizes[i]);
        const next = tf.tidy(() => acc.add(tf.tensor(view.slice(), v.shape as number[])));
        acc.dispose();
        acc = next;
      }
      grads[name] = acc;
    });
    for (const m of done) if (m.type === 'done') loss += m.loss;
    return { loss, grads };
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

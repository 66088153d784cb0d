import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { Preprocess } from '../models/types';
import { captureHandler } from '../models/io';

/*
 * Data-parallel inference: each worker thread holds its own copy of one model (loaded once from the same saved
 * weights) and runs whole batches; the caller hands batches to whichever worker is free and puts the results back in
 * input order. A batch is computed by the same kernels on the same backend whichever thread runs it, so the outputs
 * equal the single-thread path's. The caller may compute batches of its own meanwhile (predict does: one lane is the
 * calling thread), at the price of answering a finished worker only between its own batches. A pool can also run on
 * threads it did not start (`hostedOn`: a fit's gradient workers, which answer the same messages between steps).
 */

/** What a worker needs to rebuild the model: its saved artifacts, and how to turn pixels into its input. */
export interface InferenceWorkerInit {
  backend: string;
  modelTopology: object;
  weightSpecs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
  size: number;
  preprocess: Preprocess;
}

/** One batch: 8-bit HWC pixels of `n` images (preprocessed in the worker), or an already preprocessed float input. */
export type InferenceInput = { pixels: Uint8Array; n: number } | { x: Float32Array; shape: number[] };

export type InferenceRequest = { type: 'run'; id: number } & InferenceInput;
export type InferenceReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; out: Float32Array; numTensors: number }
  | { type: 'weights-set'; id: number }
  | { type: 'error'; id?: number; message: string };

/** The model's artifacts in memory, as `model.save` writes them (topology and one weights buffer). */
async function artifactsOf(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  const h = captureHandler();
  await model.save(h);
  return h.artifacts!;
}

class PoolWorker {
  private readonly waiting = new Map<number, { resolve: (m: InferenceReply) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  /** tf.memory().numTensors in the worker after its last batch: leak checks can see into the thread. */
  numTensors = 0;

  private readonly listeners: { message: (m: InferenceReply) => void; error: (e: Error) => void; exit: (code: number) => void };

  constructor(readonly worker: Worker) {
    const fail = (e: Error) => {
      this.dead = e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.listeners = {
      message: (m: InferenceReply) => {
        if (m.type === 'ready') return;
        // a reply without an id (a gradient worker's step) is not ours
        const id = m.id ?? -1;
        const w = this.waiting.get(id);
        if (!w) return;
        this.waiting.delete(id);
        if (m.type === 'error') w.reject(new Error(`inference worker: ${m.message}`));
        else w.resolve(m);
      },
      error: fail,
      exit: (code: number) => fail(new Error(`inference worker exited with code ${code}`)),
    };
    worker.on('message', this.listeners.message);
    worker.on('error', this.listeners.error);
    worker.on('exit', this.listeners.exit);
  }

  /** Stops listening to a worker the pool does not own (it lives on as a gradient worker). */
  detach(): void {
    this.worker.off('message', this.listeners.message);
    this.worker.off('error', this.listeners.error);
    this.worker.off('exit', this.listeners.exit);
  }

  request(id: number, msg: object, transfer: ArrayBuffer[] = []): Promise<InferenceReply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }
}

export class InferencePool {
  private nextId = 0;
  private readonly idle: PoolWorker[] = [];
  private readonly queue: Array<(w: PoolWorker) => void> = [];

  /** `owned`: the pool started the threads and ends them; otherwise they are gradient workers lent for a while. */
  private constructor(
    private readonly workers: PoolWorker[],
    private readonly owned: boolean,
  ) {
    this.idle.push(...workers);
  }

  /**
   * Starts `threads` workers on the current tfjs backend, each loading `model` (typically the BatchNorm-folded
   * inference model) from one in-memory save. `size` and `preprocess` turn pixel batches into the model's input.
   */
  static async create(model: tf.LayersModel, opts: { threads: number; size: number; preprocess: Preprocess }): Promise<InferencePool> {
    const a = await artifactsOf(model);
    const init: Omit<InferenceWorkerInit, 'weightData'> = {
      backend: tf.getBackend(),
      modelTopology: a.modelTopology as object,
      weightSpecs: a.weightSpecs!,
      size: opts.size,
      preprocess: opts.preprocess,
    };
    // from the sources (tests, tsx) the worker is TypeScript and needs tsx's loader; from dist it is plain JS
    const fromSources = __filename.endsWith('.ts');
    const script = path.join(__dirname, fromSources ? 'inference-worker.ts' : 'inference-worker.js');
    const execArgv = fromSources ? ['--require', require.resolve('tsx/cjs')] : [];
    const started: PoolWorker[] = [];
    try {
      await Promise.all(
        Array.from({ length: opts.threads }, async () => {
          const worker = new Worker(script, { execArgv, workerData: { ...init, weightData: a.weightData } });
          const pw = new PoolWorker(worker);
          started.push(pw);
          await new Promise<void>((resolve, reject) => {
            const onMsg = (m: InferenceReply) => {
              if (m.type === 'ready') resolve();
              else if (m.type === 'error') reject(new Error(`inference worker: ${m.message}`));
              else return;
              worker.off('message', onMsg);
            };
            worker.on('message', onMsg);
            worker.once('error', reject);
            worker.once('exit', (code) => reject(new Error(`inference worker exited with code ${code} while starting`)));
          });
        }),
      );
    } catch (e) {
      await Promise.all(started.map((w) => w.worker.terminate()));
      throw e;
    }
    return new InferencePool(started, true);
  }

  /**
   * A pool over threads that already exist and answer the same messages (the gradient workers of a fit,
   * src/engine/wasm/parallel-worker.ts): each takes on a copy of `model` until `dispose`, which leaves the threads
   * running. No wasm instance is added, so a validation pass during training costs no memory of a thread of its own.
   */
  static async hostedOn(threads: readonly Worker[], model: tf.LayersModel, opts: { size: number; preprocess: Preprocess }): Promise<InferencePool> {
    const a = await artifactsOf(model);
    const init: InferenceWorkerInit = {
      backend: tf.getBackend(),
      modelTopology: a.modelTopology as object,
      weightSpecs: a.weightSpecs!,
      weightData: a.weightData as ArrayBuffer,
      size: opts.size,
      preprocess: opts.preprocess,
    };
    const workers = threads.map((t) => new PoolWorker(t));
    const pool = new InferencePool(workers, false);
    try {
      await Promise.all(
        workers.map((w) => {
          const id = pool.nextId++;
          return w.request(id, { type: 'load', id, init });
        }),
      );
    } catch (e) {
      await pool.dispose();
      throw e;
    }
    return pool;
  }

  get threads(): number {
    return this.workers.length;
  }

  /** Each worker's tensor count after its last batch. */
  get workerTensors(): number[] {
    return this.workers.map((w) => w.numTensors);
  }

  private acquire(): Promise<PoolWorker> {
    const w = this.idle.pop();
    if (w) return Promise.resolve(w);
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private release(w: PoolWorker): void {
    const next = this.queue.shift();
    if (next) next(w);
    else this.idle.push(w);
  }

  /**
   * The model's output for one batch, computed by the next free worker, flattened [n, ...]. The input's buffer is
   * transferred to the worker: the caller must not use it afterwards.
   */
  async run(input: InferenceInput): Promise<Float32Array> {
    const w = await this.acquire();
    const id = this.nextId++;
    try {
      const buf = ('pixels' in input ? input.pixels : input.x).buffer as ArrayBuffer;
      const m = await w.request(id, { type: 'run', id, ...input }, [buf]);
      if (m.type !== 'done') throw new Error(`inference worker: unexpected reply ${m.type}`);
      w.numTensors = m.numTensors;
      return m.out;
    } finally {
      this.release(w);
    }
  }

  /**
   * Copies `model`'s current weights into every worker (same topology as at creation): for a validation pass after
   * each epoch of training, without restarting the threads. Waits until all have them.
   */
  async setWeights(model: tf.LayersModel): Promise<void> {
    const a = await artifactsOf(model);
    const all = await Promise.all(this.workers.map(() => this.acquire()));
    try {
      await Promise.all(
        all.map((w) => {
          const id = this.nextId++;
          return w.request(id, { type: 'weights', id, weightSpecs: a.weightSpecs, weightData: a.weightData });
        }),
      );
    } finally {
      for (const w of all) this.release(w);
    }
  }

  async dispose(): Promise<void> {
    if (this.owned) {
      await Promise.all(this.workers.map((w) => w.worker.terminate()));
      return;
    }
    // lent threads drop their copy (its weights are out of their heap's live set) and go back to training
    const all = await Promise.all(this.workers.map(() => this.acquire()));
    await Promise.allSettled(
      all.map((w) => {
        const id = this.nextId++;
        return w.request(id, { type: 'unload', id });
      }),
    );
    for (const w of all) w.detach();
  }
}

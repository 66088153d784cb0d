/**
 * Parallel gradients: above one thread, on the wasm backend, each batch is split into shards and worker threads
 * compute all but the first (src/engine/wasm/parallel.ts); BatchNorm in training mode then sees per-shard
 * statistics. One thread (the local function alone) elsewhere, and when only a head trains on cached features,
 * where a step is too small to share.
 */
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { ParallelGradients, type ShardOutput } from '../../engine/wasm/parallel';
import { flatLayers } from '../../optim/named';

export type LocalGradients = (x: tf.Tensor, y: tf.Tensor) => ShardOutput;

export class GradientThreads {
  private parallel: ParallelGradients | null = null;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly vars: Record<string, tf.Variable>,
    private readonly opts: { threads: number; labelSmoothing: number; log: (line: string) => void },
  ) {}

  /** Starts the workers when asked for and worth it; one thread (with the reason logged) otherwise. */
  async start(): Promise<void> {
    if (this.opts.threads <= 1 || this.parallel) return;
    if (tf.getBackend() !== 'wasm') return;
    const convs = flatLayers(this.model).some((l) => /Conv/.test(l.getClassName()));
    if (!convs) return; // a head on cached features: a step takes milliseconds, a thread would cost more
    try {
      this.parallel = await ParallelGradients.create(this.model, { threads: this.opts.threads, vars: this.vars, labelSmoothing: this.opts.labelSmoothing });
    } catch (e) {
      this.opts.log(`warning: training on one thread: the gradient workers did not start (${(e as Error).message})`);
    }
  }

  /**
   * Loss, hits and gradients of one batch; `seeds(k)` are shard k's dropout seeds, `active` the variables (a
   * subset of the ones given at construction) that `local` and the workers differentiate.
   */
  compute(
    x: tf.Tensor,
    y: tf.Tensor,
    local: LocalGradients,
    seeds: (shard: number) => number[],
    active: Record<string, tf.Variable> = this.vars,
  ): ShardOutput | Promise<ShardOutput> {
    return this.parallel ? this.parallel.step(x, y, local, seeds, active === this.vars ? undefined : active) : local(x, y);
  }

  async stop(): Promise<void> {
    const p = this.parallel;
    this.parallel = null;
    await p?.dispose();
  }

  /** Threads computing gradients in the running fit (1 outside fit or when the workers did not start). */
  get threads(): number {
    return this.parallel ? this.parallel.threads : 1;
  }

  /** The gradient worker threads of the running fit (none on one thread), which can also run validation batches. */
  get workerThreads(): readonly Worker[] {
    return this.parallel ? this.parallel.workerThreads : [];
  }

  /** Tensors (count and bytes) held by each gradient worker after its last step (empty on one thread). */
  get workerMemory(): Array<{ numTensors: number; numBytes: number }> {
    return this.parallel ? this.parallel.workerMemory.map((m) => ({ ...m })) : [];
  }
}

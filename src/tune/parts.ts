/**
 * Shared plumbing for the tuning tools: a Trainer over a prepared job (the same construction runJob uses),
 * a view of a DataSource without validation images, weight snapshots including BatchNorm statistics, and
 * disposal of a prepared network. The tools drive the Trainer; they never re-implement the loop.
 */
import { makeAugmenter } from '../data/augment';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Prepared } from '../job';
import { resolveThreads } from '../engine/threads';
import { splitAtStage, type Network } from '../models/network';
import type { DataSource, Example } from '../data/source';
import type { ModelRequest, ModelSource } from '../models/source';
import type { Backbone } from '../models/types';
import { Trainer, type LrPolicy, type StepOptimizer } from '../train/trainer';
import type { Callback } from '../train/callbacks';
import { flatLayers } from '../optim/named';
import { variableWeightStore, type WeightSnapshot } from '../schedules/weights';

/** The same source with a different train/val view; decoding (and its cache) stays with the base source. */
export class SplitDataView implements DataSource {
  constructor(
    private readonly base: DataSource,
    readonly train: Example[],
    readonly val: Example[],
  ) {}
  get classes(): string[] {
    return this.base.classes;
  }
  get skipped(): DataSource['skipped'] {
    return this.base.skipped;
  }
  get warnings(): string[] {
    return this.base.warnings;
  }
  pixels(example: Example, size: number): Promise<Uint8Array> {
    return this.base.pixels(example, size);
  }
}

export interface TrainerSetup {
  epochs: number;
  /** Defaults to the prepared data source. */
  data?: DataSource;
  monitorNorms?: boolean;
  spillDir?: string | null;
}

/** A Trainer over a prepared job, built as runJob builds it (frozen prefix cached when possible). */
export function makeTrainer(p: Prepared, optimizer: StepOptimizer, lr: LrPolicy, callbacks: Callback[], s: TrainerSetup): Trainer {
  const { prefix, suffix } = p.cachedStages > 0 ? splitAtStage(p.network, p.cachedStages - 1) : { prefix: null, suffix: p.network.train };
  return new Trainer(
    p.network,
    s.data ?? p.data,
    p.trainableVars,
    optimizer,
    lr,
    callbacks,
    {
      epochs: s.epochs,
      batch: p.job.train.batch,
      size: p.network.backbone.inputSize,
      flip: p.job.data.flip,
      labelSmoothing: p.job.loss.labelSmoothing,
      hflip: p.job.data.augment.hflip,
      augment: makeAugmenter(p.job.data.augment, p.network.backbone.inputSize),
      seed: p.job.train.seed,
      cachedStages: p.cachedStages,
      cacheBytes: p.job.train.featureCacheMB * 1024 * 1024,
      spillDir: s.spillDir === undefined ? path.join(p.job.out, 'feature-cache') : s.spillDir,
      monitorNorms: s.monitorNorms ?? p.job.train.monitorRatios,
      accumulate: p.job.train.accumulate,
      threads: resolveThreads(p.job.train.threads, p.backend.tfBackend, p.job.train.batch).threads,
      // no divergence guard: a tuning run that diverges has found its answer (the finder's stop, a bad trial)
      guard: null,
    },
    { prefix, suffix },
  );
}

/** Every weight of the network, trainable or not (BatchNorm moving mean/variance included). */
export function allWeights(net: Network): WeightSnapshot {
  return variableWeightStore(() => net.train.weights.map((w) => w.read() as tf.Variable)).read();
}

export function restoreWeights(net: Network, snap: WeightSnapshot): void {
  variableWeightStore(() => net.train.weights.map((w) => w.read() as tf.Variable)).write(snap);
}

/**
 * Frees a prepared network's weights. Layer reference counts cannot be trusted here (every symbolic
 * re-application, e.g. the split at a cached stage, raises them), so the variables are released directly.
 */
export function disposeNetwork(net: Network): void {
  const seen = new Set<unknown>();
  for (const m of [net.train, net.infer, net.backbone.model]) {
    for (const layer of flatLayers(m)) {
      for (const w of layer.weights) {
        if (seen.has(w)) continue;
        seen.add(w);
        w.dispose();
      }
    }
  }
}

/** Frees the head's weights only (the layers of the training model that are not in the backbone). */
export function disposeHead(net: Network): void {
  const backbone = new Set(flatLayers(net.backbone.model));
  for (const layer of flatLayers(net.train)) {
    if (backbone.has(layer)) continue;
    for (const w of layer.weights) w.dispose();
  }
}

/**
 * A ModelSource that loads each backbone once and hands it out again with its pretrained weights (BatchNorm
 * statistics included) written back: trials of a search start from the same weights without reloading, and
 * without the loader's per-load allocations, so tensors stay flat over any number of trials. Call
 * `disposeNetwork`-style cleanup through `dispose()` when the search ends; free each trial's head with
 * `disposeHead`.
 */
export class CachedModelSource implements ModelSource {
  private readonly cache = new Map<string, { backbone: Backbone; weights: WeightSnapshot }>();
  constructor(private readonly base: ModelSource) {}
  async load(req: ModelRequest): Promise<Backbone> {
    const key = JSON.stringify([req.source, req.size ?? null]);
    const hit = this.cache.get(key);
    const store = (b: Backbone) => variableWeightStore(() => b.model.weights.map((w) => w.read() as tf.Variable));
    if (hit) {
      store(hit.backbone).write(hit.weights);
      return hit.backbone;
    }
    const backbone = await this.base.load(req);
    this.cache.set(key, { backbone, weights: store(backbone).read() });
    return backbone;
  }
  dispose(): void {
    for (const { backbone } of this.cache.values()) {
      for (const layer of flatLayers(backbone.model)) for (const w of layer.weights) w.dispose();
    }
    this.cache.clear();
  }
}

/** The top layer group's configured rate (before bias/norm multipliers): the rate a sweep or a search sets. */
export function topGroupLr(p: Prepared): number {
  const lrs = p.plan.layerGroups.map((g) => g.lr).filter((v) => v > 0);
  return lrs.length ? Math.max(...lrs) : 0;
}

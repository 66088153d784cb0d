/**
 * Shared plumbing for the tuning tools: a Trainer over a prepared job (the same construction runJob uses),
 * a view of a DataSource without validation images, weight snapshots including BatchNorm statistics, and
 * disposal of a prepared network. The tools drive the Trainer; they never re-implement the loop.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Prepared } from '../job';
import { splitAtStage, type Network } from '../models/network';
import type { DataSource, Example } from '../data/source';
import { Trainer, type LrPolicy, type StepOptimizer } from '../train/trainer';
import type { Callback } from '../train/callbacks';
import { flatLayers } from '../optim/named';
import { variableWeightStore, type WeightSnapshot } from '../schedules/weights';

/** The same source with a different train/val view; decoding (and its cache) stays with the base source. */
export class DataView implements DataSource {
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
      seed: p.job.train.seed,
      cachedStages: p.cachedStages,
      cacheBytes: p.job.train.featureCacheMB * 1024 * 1024,
      spillDir: s.spillDir === undefined ? path.join(p.job.out, 'feature-cache') : s.spillDir,
      monitorNorms: s.monitorNorms ?? p.job.train.monitorRatios,
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

/** The top layer group's configured rate (before bias/norm multipliers): the rate a sweep or a search sets. */
export function topGroupLr(p: Prepared): number {
  const lrs = p.plan.layerGroups.map((g) => g.lr).filter((v) => v > 0);
  return lrs.length ? Math.max(...lrs) : 0;
}

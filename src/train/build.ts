/**
 * The one way a Trainer is put together over a prepared job: runJob, the LR finder, search and `--wd auto`
 * all call this (through the container's `TOKENS.Trainer`), so the frozen-prefix split, the feature cache,
 * the thread count and the dropout seeding are decided in one place.
 */
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Job } from '../config/schema';
import { makeAugmenter } from '../data/augment';
import { cachedViewsOf } from '../data/cached-views';
import { balancedWeights, classCounts } from '../data/balance';
import type { DataSource } from '../data/source';
import type { BackendChoice } from '../engine/backend';
import { resolveThreads } from '../engine/threads';
import { trainedMultiplyAdds } from '../models/macs';
import { splitAtStage, type Network } from '../models/network';
import type { Callback } from './callbacks';
import type { GuardConfig } from './guard';
import type { WeightEma } from './ema';
import { Trainer, type FreezePolicy, type LrPolicy, type StepOptimizer, type TrainerOptions } from './trainer';

/** What the builder reads from a prepared job (`Prepared` from src/job.ts has all of it). */
export interface TrainerInputs {
  job: Job;
  backend: Pick<BackendChoice, 'tfBackend'>;
  data: DataSource;
  network: Network;
  cachedStages: number;
  trainableVars: Record<string, tf.Variable>;
}

/** The parts that differ between callers; everything else comes from the job. */
export interface TrainerParts {
  /** Absent: an evaluation-only trainer, whose optimizer refuses to step. */
  optimizer?: StepOptimizer;
  /** Variables that stand still for part of the run (a two-phase fine-tune); absent: all of them train throughout. */
  freeze?: FreezePolicy | null;
  lr?: LrPolicy;
  callbacks?: Callback[];
  /** Defaults to `job.train.epochs`. */
  epochs?: number;
  /** Defaults to the prepared data source. */
  data?: DataSource;
  /** Defaults to `job.train.monitorRatios`. */
  monitorNorms?: boolean;
  /** Where the feature cache spills; defaults to `<out>/feature-cache`, null keeps it in memory. */
  spillDir?: string | null;
  /** The divergence guard; off unless given (a tuning run that diverges has found its answer). */
  guard?: GuardConfig | null;
  /** Threads of the per-epoch validation pass; defaults to `job.train.threads` (resolved as predict resolves it). */
  valThreads?: 'auto' | number;
  /** The weight EMA to keep; off unless given (the tuning tools judge the raw weights). */
  ema?: WeightEma | null;
  onEpochCommitted?: TrainerOptions['onEpochCommitted'];
  log?: (line: string) => void;
}

export interface TrainerFactory {
  create(p: TrainerInputs, parts: TrainerParts): Trainer;
}

const EVALUATION_ONLY: StepOptimizer = {
  step() {
    throw new Error('this trainer was built for evaluation only: it has no optimizer to step');
  },
};

/** The default: the loop in src/train/trainer.ts, with the frozen prefix cached when there is one. */
export class LoopTrainerFactory implements TrainerFactory {
  create(p: TrainerInputs, parts: TrainerParts): Trainer {
    const { job, network } = p;
    const { prefix, suffix } = p.cachedStages > 0 ? splitAtStage(network, p.cachedStages - 1) : { prefix: null, suffix: network.train };
    return new Trainer({
      network,
      data: parts.data ?? p.data,
      vars: p.trainableVars,
      freeze: parts.freeze ?? null,
      optimizer: parts.optimizer ?? EVALUATION_ONLY,
      lr: parts.lr ?? { factor: () => 0 },
      callbacks: parts.callbacks ?? [],
      prefix,
      suffix,
      epochs: parts.epochs ?? job.train.epochs,
      batch: job.train.batch,
      size: network.backbone.inputSize,
      flip: job.data.flip,
      // with class weights the targets carry the smoothing (src/data/balance.ts), so the loss must not smooth again
      labelSmoothing: job.data.balance === 'weights' ? 0 : job.loss.labelSmoothing,
      classWeights:
        job.data.balance === 'weights'
          ? { weights: balancedWeights(classCounts((parts.data ?? p.data).train, network.classes.length)), smoothing: job.loss.labelSmoothing }
          : null,
      balanced: job.data.balance === 'sampler',
      hflip: job.data.augment.hflip,
      augment: makeAugmenter(job.data.augment, network.backbone.inputSize),
      cachedViews: cachedViewsOf(job.data.augment),
      seed: job.train.seed,
      cacheBytes: job.train.featureCacheMB * 1024 * 1024,
      spillDir: parts.spillDir === undefined ? path.join(job.out, 'feature-cache') : parts.spillDir,
      monitorNorms: parts.monitorNorms ?? job.train.monitorRatios,
      accumulate: job.train.accumulate,
      threads: resolveThreads(job.train.threads, p.backend.tfBackend, job.train.batch, undefined, trainedMultiplyAdds(network, p.cachedStages)).threads,
      guard: parts.guard ?? null,
      ema: parts.ema ?? null,
      valThreads: parts.valThreads ?? job.train.threads,
      onEpochCommitted: parts.onEpochCommitted,
      log: parts.log,
    });
  }
}

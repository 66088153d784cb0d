/**
 * The one place where the pipeline is assembled. Every stage is an `@injectable` class behind an interface,
 * resolved from one inversify container that carries the validated job under `TOKENS.JobConfig`.
 * Replace one (`container.rebind(TOKENS.DataSource).to(MyData)`), pass the container to
 * `runJob(job, { container })`, and the rest runs unchanged.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { Container, decorate, inject, injectable, optional } from 'inversify';
import { selectBackend, type BackendChoice } from './engine/backend';
import type { ModelSource } from './models/source';
import { RegistryModelSource } from './models/registry';
import { ImageFolderSource } from './data/image-folder';
import type { DataSource } from './data/source';
import { LayersModelExporter, type Exporter } from './export/exporter';
import { GroupedOptimizer, type ParamGroup } from './optim';
import { resolveOptimizer } from './optim/schema';
import { LrSchedule, resolveSchedule, type RunShape } from './schedules';
import { planGroups, type GroupPlan } from './groups';
import type { LayerInfo } from './groups';
import { ProgressCallback } from './train/progress';
import { MetricsLogCallback } from './train/metrics-log';
import type { Callback } from './train/callbacks';
import type { Job } from './config/schema';
import type { Stateful } from './stateful';
import { LoopTrainerFactory, type TrainerFactory } from './train/build';
import { Checkpointer, type CheckpointMeta } from './train/checkpoint/checkpointer';
import type { BestJudge } from './train/checkpoint/best';
import type { CheckpointConfig } from './train/schema';
import type { StateRegistry } from './stateful';
import {
  EarlyStoppingCallbacks,
  MomentumCallbacks,
  RatioMonitorCallbacks,
  SignalCallbacks,
  WeightDecayScheduleCallbacks,
  type CallbackFactory,
} from './train/run-callbacks';

/*
 * The stage methods still take the job as an argument: search resolves its stages once and then runs
 * trials whose jobs differ from the container's, so the argument, not the injected job, is what a call uses.
 */
export interface BackendProvider {
  select(name: string): Promise<BackendChoice>;
}
export interface DataSourceFactory {
  create(job: Job): DataSource;
}
export interface Grouper {
  plan(layers: LayerInfo[], job: Job): GroupPlan;
}
export interface OptimizerFactory {
  create(groups: ParamGroup[], job: Job): GroupedOptimizer;
}
export interface ScheduleFactory {
  create(job: Job, run: RunShape): LrSchedule;
}
export interface ReporterFactory {
  create(job: Job, runDir: string): Callback[];
}

export const TOKENS = {
  /** The validated job (the zod schema's output type); runJob rebinds it to the job it resolved. */
  JobConfig: Symbol.for('layertune.JobConfig'),
  Backend: Symbol.for('layertune.Backend'),
  ModelSource: Symbol.for('layertune.ModelSource'),
  DataSource: Symbol.for('layertune.DataSource'),
  Grouper: Symbol.for('layertune.Grouper'),
  Optimizer: Symbol.for('layertune.Optimizer'),
  Schedule: Symbol.for('layertune.Schedule'),
  Reporters: Symbol.for('layertune.Reporters'),
  Exporter: Symbol.for('layertune.Exporter'),
  /** Builds the Trainer over a prepared job: runJob, lr-find, search and `--wd auto` all take theirs from here. */
  Trainer: Symbol.for('layertune.Trainer'),
  /** Writes the run's checkpoints from the state registry (src/train/checkpoint/checkpointer.ts). */
  Checkpointer: Symbol.for('layertune.Checkpointer'),
  /**
   * A multi-binding of the built-in callbacks' factories (ratio monitor, weight-decay and momentum schedules, early
   * stopping, signals): each is given the run's context and returns what it adds (src/train/run-callbacks.ts).
   */
  RunCallbacks: Symbol.for('layertune.RunCallbacks'),
  /** A multi-binding: every `Callback` bound here joins the loop, run among the built-in ones by its `order`. */
  Callback: Symbol.for('layertune.Callback'),
  /** A multi-binding: every `Stateful` part bound here is saved in each checkpoint under its stateKey and restored on resume. */
  Stateful: Symbol.for('layertune.Stateful'),
} as const;

/** Builds the checkpointer of a run over its state registry and best-checkpoint judge. */
export interface CheckpointerFactory {
  create(cfg: CheckpointConfig, runDir: string, meta: CheckpointMeta, state: StateRegistry, judge: BestJudge | null): Checkpointer;
}

/** The default: checkpoint folders under `<run>/checkpoints/`, written atomically. */
export class FolderCheckpointer implements CheckpointerFactory {
  create(cfg: CheckpointConfig, runDir: string, meta: CheckpointMeta, state: StateRegistry, judge: BestJudge | null): Checkpointer {
    return new Checkpointer(cfg, runDir, meta, state, judge);
  }
}

export interface Stages {
  backend: BackendProvider;
  modelSource: ModelSource;
  data: DataSourceFactory;
  grouper: Grouper;
  optimizer: OptimizerFactory;
  schedule: ScheduleFactory;
  reporters: ReporterFactory;
  exporter: Exporter;
  trainer: TrainerFactory;
  checkpointer: CheckpointerFactory;
  /** The built-in callbacks' factories, in binding order. */
  runCallbacks: CallbackFactory[];
}

@injectable()
export class AutoBackend implements BackendProvider {
  select(name: string): Promise<BackendChoice> {
    return selectBackend(name);
  }
}

@injectable()
export class ImageFolderData implements DataSourceFactory {
  constructor(@inject(TOKENS.JobConfig) @optional() private readonly job?: Job) {}
  create(job: Job = this.job!): DataSource {
    return new ImageFolderSource({
      root: job.data.dir,
      valFraction: job.data.valFraction,
      seed: job.data.splitSeed,
      maxPixels: job.data.maxPixels,
      cacheBytes: job.data.cacheMB * 1024 * 1024,
      evalCrop: { mode: job.eval.crop, cropPct: job.eval.cropPct },
      presize: job.data.presize,
    });
  }
}

@injectable()
export class ConfigGrouper implements Grouper {
  constructor(@inject(TOKENS.JobConfig) @optional() private readonly job?: Job) {}
  plan(layers: LayerInfo[], job: Job = this.job!): GroupPlan {
    return planGroups(layers, job.groups, job.optimizer);
  }
}

@injectable()
export class ConfigOptimizer implements OptimizerFactory {
  constructor(@inject(TOKENS.JobConfig) @optional() private readonly job?: Job) {}
  create(groups: ParamGroup[], job: Job = this.job!): GroupedOptimizer {
    const o = resolveOptimizer(job.optimizer);
    return new GroupedOptimizer(groups, { ...o, algorithm: o.algorithm });
  }
}

@injectable()
export class ConfigSchedule implements ScheduleFactory {
  constructor(@inject(TOKENS.JobConfig) @optional() private readonly job?: Job) {}
  create(job: Job = this.job!, run: RunShape): LrSchedule {
    return new LrSchedule(resolveSchedule({ lr: job.lr, schedule: job.schedule, warmup: job.warmup, plateau: job.plateau }, run));
  }
}

@injectable()
export class FileReporters implements ReporterFactory {
  constructor(@inject(TOKENS.JobConfig) @optional() private readonly job?: Job) {}
  create(_job: Job = this.job!, runDir: string = this.job!.out): Callback[] {
    return [new ProgressCallback(), new MetricsLogCallback(path.join(runDir, 'metrics.jsonl'))];
  }
}

// Library classes with no constructor dependencies: decorated here so their modules stay free of inversify.
decorate(injectable(), RegistryModelSource);
decorate(injectable(), LayersModelExporter);
decorate(injectable(), LoopTrainerFactory);
decorate(injectable(), FolderCheckpointer);
for (const f of [RatioMonitorCallbacks, WeightDecayScheduleCallbacks, MomentumCallbacks, EarlyStoppingCallbacks, SignalCallbacks]) decorate(injectable(), f);

/**
 * The default pipeline. `job` is the validated job the stages see; runJob rebinds `TOKENS.JobConfig` to the
 * job it resolves (resume and config files can change it), so a container built without one still works.
 */
export function createContainer(job?: Job): Container {
  const c = new Container();
  if (job) c.bind<Job>(TOKENS.JobConfig).toConstantValue(job);
  c.bind<BackendProvider>(TOKENS.Backend).to(AutoBackend);
  c.bind<ModelSource>(TOKENS.ModelSource).to(RegistryModelSource);
  c.bind<DataSourceFactory>(TOKENS.DataSource).to(ImageFolderData);
  c.bind<Grouper>(TOKENS.Grouper).to(ConfigGrouper);
  c.bind<OptimizerFactory>(TOKENS.Optimizer).to(ConfigOptimizer);
  c.bind<ScheduleFactory>(TOKENS.Schedule).to(ConfigSchedule);
  c.bind<ReporterFactory>(TOKENS.Reporters).to(FileReporters);
  c.bind<Exporter>(TOKENS.Exporter).to(LayersModelExporter);
  c.bind<TrainerFactory>(TOKENS.Trainer).to(LoopTrainerFactory);
  c.bind<CheckpointerFactory>(TOKENS.Checkpointer).to(FolderCheckpointer);
  for (const f of [RatioMonitorCallbacks, WeightDecayScheduleCallbacks, MomentumCallbacks, EarlyStoppingCallbacks, SignalCallbacks]) {
    c.bind<CallbackFactory>(TOKENS.RunCallbacks).to(f);
  }
  return c;
}

/** Makes `job` the container's JobConfig, replacing whatever the caller bound (in this container, not its parent). */
export function bindJob(c: Container, job: Job): void {
  if (c.isCurrentBound(TOKENS.JobConfig)) c.rebind<Job>(TOKENS.JobConfig).toConstantValue(job);
  else c.bind<Job>(TOKENS.JobConfig).toConstantValue(job);
}

/** The user's callbacks: everything bound to `TOKENS.Callback`, in binding order. */
export function boundCallbacks(c: Container): Callback[] {
  return c.isBound(TOKENS.Callback) ? c.getAll<Callback>(TOKENS.Callback) : [];
}

/** The user's stateful parts: everything bound to `TOKENS.Stateful`, in binding order. */
export function boundStateful(c: Container): Array<Stateful<unknown>> {
  return c.isBound(TOKENS.Stateful) ? c.getAll<Stateful<unknown>>(TOKENS.Stateful) : [];
}

/**
 * Every stage as the container resolves it now: rebinding a token before this call is the one way to replace a
 * stage (JobConfig is optional so that search can pass each trial's job per call).
 */
export function stagesOf(c: Container): Stages {
  return {
    backend: c.get<BackendProvider>(TOKENS.Backend),
    modelSource: c.get<ModelSource>(TOKENS.ModelSource),
    data: c.get<DataSourceFactory>(TOKENS.DataSource),
    grouper: c.get<Grouper>(TOKENS.Grouper),
    optimizer: c.get<OptimizerFactory>(TOKENS.Optimizer),
    schedule: c.get<ScheduleFactory>(TOKENS.Schedule),
    reporters: c.get<ReporterFactory>(TOKENS.Reporters),
    exporter: c.get<Exporter>(TOKENS.Exporter),
    trainer: c.get<TrainerFactory>(TOKENS.Trainer),
    checkpointer: c.get<CheckpointerFactory>(TOKENS.Checkpointer),
    runCallbacks: c.isBound(TOKENS.RunCallbacks) ? c.getAll<CallbackFactory>(TOKENS.RunCallbacks) : [],
  };
}

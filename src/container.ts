/**
 * The one place where the pipeline is assembled. Every stage is a binding behind an interface;
 * replace one (`container.rebind(TOKENS.DataSource)...`) and the rest runs unchanged.
 */
import 'reflect-metadata';
import { Container } from 'inversify';
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
import * as path from 'node:path';

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
  Backend: Symbol.for('layertune.Backend'),
  ModelSource: Symbol.for('layertune.ModelSource'),
  DataSource: Symbol.for('layertune.DataSource'),
  Grouper: Symbol.for('layertune.Grouper'),
  Optimizer: Symbol.for('layertune.Optimizer'),
  Schedule: Symbol.for('layertune.Schedule'),
  Reporters: Symbol.for('layertune.Reporters'),
  Exporter: Symbol.for('layertune.Exporter'),
} as const;

export interface Stages {
  backend: BackendProvider;
  modelSource: ModelSource;
  data: DataSourceFactory;
  grouper: Grouper;
  optimizer: OptimizerFactory;
  schedule: ScheduleFactory;
  reporters: ReporterFactory;
  exporter: Exporter;
}

export function createContainer(): Container {
  const c = new Container();
  c.bind<BackendProvider>(TOKENS.Backend).toConstantValue({ select: selectBackend });
  c.bind<ModelSource>(TOKENS.ModelSource).toConstantValue(new RegistryModelSource());
  c.bind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({
    create: (job) =>
      new ImageFolderSource({
        root: job.data.dir,
        valFraction: job.data.valFraction,
        seed: job.data.splitSeed,
        maxPixels: job.data.maxPixels,
        cacheBytes: job.data.cacheMB * 1024 * 1024,
      }),
  });
  c.bind<Grouper>(TOKENS.Grouper).toConstantValue({
    plan: (layers, job) => planGroups(layers, job.groups, job.optimizer),
  });
  c.bind<OptimizerFactory>(TOKENS.Optimizer).toConstantValue({
    create: (groups, job) => {
      const o = resolveOptimizer(job.optimizer);
      return new GroupedOptimizer(groups, { ...o, algorithm: o.algorithm });
    },
  });
  c.bind<ScheduleFactory>(TOKENS.Schedule).toConstantValue({
    create: (job, run) => new LrSchedule(resolveSchedule({ lr: job.lr, schedule: job.schedule, warmup: job.warmup, plateau: job.plateau }, run)),
  });
  c.bind<ReporterFactory>(TOKENS.Reporters).toConstantValue({
    create: (_job, runDir) => [new ProgressCallback(), new MetricsLogCallback(path.join(runDir, 'metrics.jsonl'))],
  });
  c.bind<Exporter>(TOKENS.Exporter).toConstantValue(new LayersModelExporter());
  return c;
}

export function resolveStages(c: Container): Stages {
  return {
    backend: c.get<BackendProvider>(TOKENS.Backend),
    modelSource: c.get<ModelSource>(TOKENS.ModelSource),
    data: c.get<DataSourceFactory>(TOKENS.DataSource),
    grouper: c.get<Grouper>(TOKENS.Grouper),
    optimizer: c.get<OptimizerFactory>(TOKENS.Optimizer),
    schedule: c.get<ScheduleFactory>(TOKENS.Schedule),
    reporters: c.get<ReporterFactory>(TOKENS.Reporters),
    exporter: c.get<Exporter>(TOKENS.Exporter),
  };
}

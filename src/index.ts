/**
 * layertune's public API. The CLI (src/cli) is a thin shell over these; scripts use the same calls.
 */
import { runJob as runAnyJob, type JobResult, type RunOptions } from './job';
import type { JobInput } from './config/schema';
export { prepare, type JobResult, type Prepared, type RunOptions } from './job';

/**
 * Runs a job: train, evaluate, export. Internally runJob also takes loose records (CLI flags, merged
 * files); the public signature takes only JobInput, so a misspelt key fails to type-check in the caller
 * instead of failing at run time.
 */
export const runJob: (input?: JobInput, opts?: RunOptions) => Promise<JobResult> = runAnyJob;
export { JobSchema, type Job, type JobInput } from './config/schema';
export { resolveJob, readJobFile } from './config/load';
export {
  createContainer,
  TOKENS,
  type Stages,
  type DataSourceFactory,
  type OptimizerFactory,
  type ScheduleFactory,
  type Grouper,
  type ReporterFactory,
  type BackendProvider,
} from './container';
export { LoopTrainerFactory, type TrainerFactory, type TrainerInputs, type TrainerParts } from './train/build';
export { selectBackend, type BackendChoice } from './engine/backend';
export { Trainer, type LrPolicy, type TrainerOptions, type FitResult } from './train/trainer';
export { CALLBACK_ORDER, inCallbackOrder, type Callback, type BatchInfo, type EpochInfo } from './train/callbacks';
export { loadClassifier, predictFiles, evaluateFolder } from './predict';
export { LayersModelExporter, loadExport } from './export/exporter';
export { attachHead, splitAtStage, type Network } from './models/network';
export { loadLayersFolder } from './models/tfjs-layers';
export type { Backbone, StageDef, Preprocess } from './models/types';
export type { DataSource, Example } from './data/source';
export { ImageFolderSource } from './data/image-folder';
export * from './models';
export * from './optim';
export * from './groups';
export * from './schedules';
export { ConfigError, DataError, ModelFormatError, TrainingError, UserError } from './errors';
export * from './tune';
export * from './report';
export { GuardSchema, DivergenceGuard } from './train/guard';
export { CheckpointSchema, saveCheckpoint, loadCheckpoint, latestCheckpoint, modelWeightStore } from './train/checkpoint';
export { planResume } from './train/checkpoint-resume';

/**
 * layertune's public API. The CLI (src/cli) is a thin shell over these; scripts use the same calls.
 */
export { runJob, prepare, type JobResult, type Prepared, type RunOptions } from './job';
export { JobSchema, type Job, type JobInput } from './config/schema';
export { resolveJob, readJobFile } from './config/load';
export { createContainer, resolveStages, TOKENS, type Stages } from './container';
export { selectBackend, type BackendChoice } from './engine/backend';
export { Trainer, type LrPolicy, type TrainerOptions, type FitResult } from './train/trainer';
export type { Callback, BatchInfo, EpochInfo } from './train/callbacks';
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

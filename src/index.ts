/**
 * layertune's public API: what a script needs to run, plan and tune a job, swap a pipeline stage, load
 * a backbone, and use an exported classifier. The CLI (src/cli) is a thin shell over the same calls.
 * Everything else under src/ is internal and may change between versions.
 *
 * One export per line, sorted within each area, so that adding a name merges cleanly; the exact list is
 * pinned by test/package/public-api.test.ts, which fails on any export added or dropped by accident.
 */
import { runJob as runAnyJob, type JobResult, type RunOptions } from './job';
import type { JobInput } from './config/schema';

// Jobs: run, prepare (build without training) and read job configs.
/**
 * Runs a job: train, evaluate, export. Internally runJob also takes loose records (CLI flags, merged
 * files); the public signature takes only JobInput, so a misspelt key fails to type-check in the caller
 * instead of failing at run time.
 */
export const runJob: (input?: JobInput, opts?: RunOptions) => Promise<JobResult> = runAnyJob;
export { buildPlan } from './train/plan';
export { JobSchema } from './config/schema';
export { prepare } from './job';
export { readJobFile } from './config/load';
export { resolveJob } from './config/load';
export type { FitResult } from './train/trainer';
export type { Job } from './config/schema';
export type { JobInput } from './config/schema';
export type { JobPlan } from './train/plan';
export type { JobResult } from './job';
export type { LayerPlan } from './train/plan';
export type { LrPoints } from './train/plan';
export type { Prepared } from './job';
export type { RunOptions } from './job';
export type { VariablePlan } from './train/plan';

// Pipeline stages: the container, its binding tokens, the stage interfaces and the callbacks.
export { CALLBACK_ORDER } from './train/callbacks';
export { CancelBatch } from './train/callbacks';
export { CancelEpoch } from './train/callbacks';
export { CancelFit } from './train/callbacks';
export { CancelStep } from './train/callbacks';
export { createContainer } from './container';
export { ImageFolderSource } from './data/image-folder';
export { inCallbackOrder } from './train/callbacks';
export { LayersModelExporter } from './export/exporter';
export { LoopTrainerFactory } from './train/build';
export { ParamScheduler } from './train/param-scheduler';
export { TOKENS } from './container';
export type { BackendProvider } from './container';
export type { BackwardInfo } from './train/callbacks';
export type { BatchBeginInfo } from './train/callbacks';
export type { BatchEndInfo } from './train/callbacks';
export type { BatchInfo } from './train/callbacks';
export type { Callback } from './train/callbacks';
export type { CancelInfo } from './train/callbacks';
export type { DataSource } from './data/source';
export type { DataSourceFactory } from './container';
export type { EpochInfo } from './train/callbacks';
export type { FitBeginInfo } from './train/callbacks';
export type { FitEndInfo } from './train/callbacks';
export type { StepControl } from './train/callbacks';
export type { Example } from './data/source';
export type { Exporter } from './export/exporter';
export type { Grouper } from './container';
export type { ModelSource } from './models/source';
export type { OptimizerFactory } from './container';
export type { ReporterFactory } from './container';
export type { ScheduleFactory } from './container';
export type { Stages } from './container';
export type { Stateful } from './stateful';
export type { TrainerFactory } from './train/build';
export type { TrainerInputs } from './train/build';
export type { TrainerParts } from './train/build';

// Backends.
export { selectBackend } from './engine/backend';
export type { BackendChoice } from './engine/backend';

// Models: load a backbone from any supported source, inspect it, put a head on it.
export { attachHead } from './models/network';
export { formatInspection } from './models/inspect';
export { inspectBackbone } from './models/inspect';
export { KNOWN_ARCHS } from './models/arch';
export { loadBackbone } from './models/registry';
export type { Backbone } from './models/types';
export type { Inspection } from './models/inspect';
export type { LoadBackboneOptions } from './models/registry';
export type { LoadedBackbone } from './models/torch-source';
export type { Network } from './models/network';
export type { Preprocess } from './models/types';
export type { StageDef } from './models/types';

// Using an export: load it, predict, evaluate.
export { evaluateFolder } from './predict';
export { loadClassifier } from './predict';
export { loadExport } from './export/exporter';
export { predictFiles } from './predict';
export { classifyFiles, inferFiles } from './predict';
export type { InferenceOptions, InferenceSummary } from './predict';
export { InferencePool } from './engine/inference-pool';
export type { Classifier } from './predict';
export type { Evaluation } from './predict';
export type { ExportMetadata } from './export/exporter';
export type { Prediction } from './predict';

// Layer groups and the grouped optimizer.
export { ALGORITHMS } from './optim/types';
export { DECAY_MODES } from './optim/types';
export { geometricRates } from './groups/rates';
export { GroupedOptimizer } from './optim/grouped-optimizer';
export { layerDecayRates } from './groups/rates';
export { planGroups } from './groups/plan';
export { steppedRates } from './groups/rates';
export type { Algorithm } from './optim/types';
export type { DecayMode } from './optim/types';
export type { GroupedOptimizerOptions } from './optim/grouped-optimizer';
export type { GroupingInput } from './groups/schema';
export type { GroupPlan } from './groups/types';
export type { LayerInfo } from './groups/types';
export type { OptimizerInput } from './optim/schema';
export type { ParamGroup } from './optim/types';

// Learning-rate schedules, plateau and early stopping.
export { EarlyStopping } from './schedules/early-stopping';
export { formatLrPlan } from './schedules/plan';
export { lrPlan } from './schedules/plan';
export { LrSchedule } from './schedules/controller';
export { LrScheduleSchema } from './schedules/schema';
export { ReduceOnPlateau } from './schedules/plateau';
export { resolveSchedule } from './schedules/resolve';
export type { EarlyStoppingInput } from './schedules/schema';
export type { LrPlan } from './schedules/plan';
export type { LrScheduleConfig } from './schedules/schema';
export type { LrScheduleInput } from './schedules/schema';
export type { PlateauInput } from './schedules/schema';
export type { ResolvedSchedule } from './schedules/resolve';
export type { RunShape } from './schedules/scaling';

// Tuning: LR range test, search with k-fold CV, the weight-decay rule of thumb.
export { formatLrFind } from './tune/lr-find';
export { formatSearch } from './tune/search';
export { lrFind } from './tune/lr-find';
export { lrWdWarnings } from './tune/rules';
export { search } from './tune/search';
export { wdAuto } from './tune/rules';
export type { LrFindInput } from './tune/schema';
export type { LrFindResult } from './tune/lr-find';
export type { RuleWarning } from './tune/rules';
export type { SearchInput } from './tune/schema';
export type { SearchOptions } from './tune/search';
export type { SearchResult } from './tune/search';
export type { TrialRecord } from './tune/search';
export type { WdAutoResult } from './tune/rules';

// Reports.
export { writeReport } from './report/report';
export type { RunMetrics } from './report/report';

// Errors: every user-facing failure is one of these (UserError is the base class).
export { ConfigError } from './errors';
export { DataError } from './errors';
export { ModelFormatError } from './errors';
export { TrainingError } from './errors';
export { UserError } from './errors';

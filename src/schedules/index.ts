/** Public API of the schedules area: config schema, pure schedules, linear scaling, plateau stage, reference replay. */
export * from './schema';
export { baseShape, type BaseShape, type Horizon, type TimeUnit } from './base';
export {
  resolveLr,
  scaleFactor,
  DEFAULT_WARMUP_EPOCHS,
  type RunShape,
  type ResolvedLr,
  type ResolvedWarmup,
} from './scaling';
export { resolveSchedule, planPoints, type ResolvedSchedule, type PlanPoint } from './resolve';
export {
  ReduceOnPlateau,
  type PlateauState,
  type PlateauDecision,
  type PlateauOptions,
} from './plateau';
export { LrSchedule, type LrScheduleState, type EpochEndResult } from './controller';
export {
  referenceSpecToJob,
  evaluateReferenceCase,
  type ReferenceCase,
  type ReferenceFile,
  type ReferenceJob,
  type CaseResult,
} from './reference';
export {
  EarlyStopping,
  resolveMode,
  type EarlyStopDecision,
  type EarlyStoppingState,
} from './early-stopping';
export { ModelWeights, modelWeights, type WeightStore, type WeightSnapshot, type WeightCopy } from './weights';
export { lrPlan, formatLrPlan, type LrPlan } from './plan';

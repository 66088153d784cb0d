/** Public API of the tuning tools: LR range test, search with k-fold CV, rules of thumb, their config schemas. */
export * from './schema';
export { lrFind, lrRangeTest, writeLrFind, formatLrFind, lrFindSvg, sweepPolicy, type LrFindResult } from './lr-find';
export { lrAuto } from './lr-auto';
export {
  sweepRate,
  SmoothedLoss,
  smooth,
  centredMean,
  shouldStop,
  slopes,
  suggestLr,
  valley,
  minimumOver10,
  trimCurve,
  type Suggestion,
  type CurveReading,
  type SuggestOptions,
} from './lr-curve';
export {
  search,
  planTrials,
  foldViews,
  readTrials,
  writeSearchResults,
  formatSearch,
  type SearchOptions,
  type SearchResult,
  type TrialRecord,
  type TrialStatus,
} from './search';
export { PARAMS, randomTrials, gridTrials, gridValues, sampleRange, trialToJob, validateSpace, describeTrial, type ParamName, type TrialParams } from './space';
export { median, medianStop, type MedianStopOptions } from './median-stop';
export {
  lrWdWarnings,
  planLrWdWarnings,
  penalty,
  wdForFraction,
  wdAuto,
  WeightDecaySchedule,
  WdScheduleSchema,
  type WdAutoResult,
  type RuleWarning,
  type RateRow,
  type WdScheduleInput,
} from './rules';
export { SplitDataView, CachedModelSource, disposeNetwork, disposeHead, topGroupLr } from './parts';
export { RatioMonitor, nudge, geometricMean, type RatioWarning, type AdjustableOptimizer } from '../train/ratio-monitor';

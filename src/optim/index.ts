export { GroupedOptimizer, OPTIMIZER_DEFAULTS, resolveGroup, type GroupedOptimizerOptions } from './grouped-optimizer';
export { namedVariables, namedVariableGrads } from './named';
export { decayGradient, applyUpdate } from './decay';
export {
  optimizerSchema,
  resolveOptimizer,
  parseOrThrow,
  checkDecayModeFits,
  type OptimizerInput,
  type OptimizerConfig,
  type ResolvedOptimizer,
} from './schema';
export {
  ALGORITHMS,
  DECAY_MODES,
  DECOUPLED_ALGORITHMS,
  type Algorithm,
  type DecayMode,
  type ParamGroup,
  type ResolvedGroup,
  type OptimizerDefaults,
  type OptimizerState,
  type StepOptions,
  type StepResult,
  type UpdateNorm,
} from './types';

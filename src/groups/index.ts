export { planGroups } from './plan';
export { collapseByLayer, type LayerPlanRow } from './by-layer';
export { describeLayers, roleOf } from './describe';
export { steppedRates, geometricRates, layerDecayRates, splitStages } from './rates';
export {
  groupingSchema,
  ruleSchema,
  steppedSchema,
  geometricSchema,
  autoSchema,
  layerDecaySchema,
  rulesOnlySchema,
  type GroupingInput,
  type GroupingConfig,
  type GroupRule,
} from './schema';
export type { LayerInfo, LayerVar, VarRole, PlanRow, PlanWarning, LayerGroup, GroupPlan } from './types';

import type { Algorithm, DecayMode, ParamGroup } from '../optim/types';
import type { ResolvedOptimizer } from '../optim/schema';

/** conv/dense/depthwise kernels → kernel; biases → bias; BatchNorm gamma/beta → norm. */
export type VarRole = 'kernel' | 'bias' | 'norm';

export interface LayerVar {
  /** Stable variable name (`LayerVariable.originalName`, e.g. `conv_pw_1/kernel`). */
  name: string;
  shape: number[];
  role: VarRole;
}

/** Plain-data description of one layer with trainable variables; what grouping works from. */
export interface LayerInfo {
  name: string;
  /** Index of the backbone stage the layer belongs to (front = 0); head layers come after the last. */
  stage: number;
  isHead: boolean;
  variables: LayerVar[];
}

/** One variable of the dry-run plan, lr at schedule factor 1. */
export interface PlanRow {
  name: string;
  layer: string;
  /** Layer group (`g0` = front). */
  group: string;
  /** The ParamGroup the variable is in; null when frozen. */
  paramGroup: string | null;
  role: VarRole;
  frozen: boolean;
  /** 0 when frozen. */
  lr: number;
  /** 0 when frozen. */
  weightDecay: number;
  decayMode: DecayMode;
}

export interface PlanWarning {
  path: string;
  message: string;
}

/** A layer group before role multipliers: its base lr and layers, front to back. */
export interface LayerGroup {
  name: string;
  lr: number;
  layers: string[];
}

export interface GroupPlan {
  algorithm: Algorithm;
  optimizer: ResolvedOptimizer;
  layerGroups: LayerGroup[];
  /** Trainable variables only, ready for `new GroupedOptimizer(plan.groups, {algorithm: plan.algorithm})`. */
  groups: ParamGroup[];
  /** Variables to differentiate, in layer order. */
  trainable: string[];
  /** Variables never to differentiate (freeze, lrMult 0, or a role multiplier of 0). */
  frozen: string[];
  rows: PlanRow[];
  /** Non-fatal findings (e.g. a rule matching no layer); errors under `strict`. */
  warnings: PlanWarning[];
}

import type * as tf from '@tensorflow/tfjs';

/** Every update rule GroupedOptimizer knows. The `*w` names are the decoupled-decay variants. */
export const ALGORITHMS = ['sgd', 'momentum', 'nesterov', 'adam', 'adamw', 'sgdw', 'momentumw', 'rmsprop', 'lars'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** Algorithms whose weight decay is decoupled by definition (their names end in `w`). */
export const DECOUPLED_ALGORITHMS: ReadonlySet<Algorithm> = new Set<Algorithm>(['adamw', 'sgdw', 'momentumw']);

/**
 * How weight decay enters the update (per group):
 * - `coupled`: L2 added to the gradient, g ← g + wd·w (PyTorch `weight_decay` of SGD/Adam/RMSprop).
 *   Equivalent to a `tf.regularizers.l2({l2})` penalty l2·Σw² with wd = 2·l2 (its gradient is 2·l2·w).
 * - `decoupled`: applied to the weights outside the gradient statistics, w ← w·(1 − lr·wd) − lr·update
 *   (PyTorch AdamW; SGDW/momentumW: W ← W − lr·v − lr·wd·W).
 * - `l1`: g ← g + wd·sign(w), i.e. the gradient of wd·Σ|w| (tf.regularizers.l1 with l1 = wd).
 */
export const DECAY_MODES = ['coupled', 'decoupled', 'l1'] as const;
export type DecayMode = (typeof DECAY_MODES)[number];

/**
 * One parameter group, plain data like a PyTorch `param_groups` entry. `params` are variable NAMES:
 * the optimizer keys its slots by these names, never by position, so groups can be rebuilt,
 * reordered or checkpointed without mixing up momentum between variables.
 * Fields left undefined take the optimizer's defaults (see `OptimizerDefaults`).
 */
export interface ParamGroup {
  name: string;
  params: string[];
  /** Learning rate at schedule factor 1. */
  lr: number;
  weightDecay: number;
  decayMode: DecayMode;
  /** momentum / nesterov / momentumw / lars / rmsprop (PyTorch's momentum argument). */
  momentum?: number;
  /** SGD dampening (PyTorch), default 0. */
  dampening?: number;
  /** adam / adamw. */
  betas?: [number, number];
  /** adam / adamw / rmsprop epsilon. */
  eps?: number;
  /** rmsprop smoothing constant (PyTorch `alpha`). */
  alpha?: number;
  /** rmsprop: centered variant. */
  centered?: boolean;
  /** lars trust coefficient η. */
  trustCoefficient?: number;
  /**
   * lars only: apply the layer-wise trust ratio to this group. Usual practice (You et al., Goyal et al.)
   * leaves biases and norm parameters out, which is what `planGroups` emits.
   */
  adaptive?: boolean;
}

/** Hyper-parameters shared by all groups unless a group overrides them. */
export interface OptimizerDefaults {
  momentum: number;
  dampening: number;
  betas: [number, number];
  eps: number;
  alpha: number;
  centered: boolean;
  trustCoefficient: number;
}

/** A group with every field filled in: what the update rules see. */
export type ResolvedGroup = Required<ParamGroup>;

export interface StepOptions {
  /** Compute ‖Δw‖ and ‖w‖ for each updated variable (one host read per step). */
  norms?: boolean;
}

export interface UpdateNorm {
  /** ‖w_after − w_before‖₂ */
  update: number;
  /** ‖w_after‖₂ */
  weight: number;
}

export interface StepResult {
  /** Number of steps taken so far, this one included. */
  step: number;
  /** Effective learning rate used per group (group.lr × lrFactor). */
  lrs: Record<string, number>;
  /** Present when norms were requested. Group norms are the 2-norm over all the group's variables. */
  norms?: { vars: Record<string, UpdateNorm>; groups: Record<string, UpdateNorm> };
}

/** Checkpointable optimizer state: plain typed arrays keyed by variable name. */
export interface OptimizerState {
  algorithm: Algorithm;
  step: number;
  vars: Record<string, { step: number; slots: Record<string, { shape: number[]; values: Float32Array }> }>;
}

/** The slot tensors of one variable, by slot name (e.g. `momentum`, `m`, `v`). */
export type Slots = Record<string, tf.Tensor>;

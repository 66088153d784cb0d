import type * as tf from '@tensorflow/tfjs';
import type { ResolvedGroup, Slots } from '../types';

/** What an update rule sees for one variable. Called inside the optimizer's tf.tidy. */
export interface RuleInput {
  /** Current weights (before this update). */
  w: tf.Tensor;
  /** Gradient with coupled/L1 decay already folded in (what PyTorch calls d_p). */
  g: tf.Tensor;
  /** Raw gradient, before any decay (LARS needs it for its trust ratio). */
  gRaw: tf.Tensor;
  /** Slots from the previous step; a slot is absent before the variable's first update. */
  slots: Partial<Slots>;
  /** 1-based count of updates of this variable, this one included (Adam bias correction). */
  step: number;
  /** Effective learning rate for this step (group lr × schedule factor). */
  lr: number;
  group: ResolvedGroup;
}

export interface RuleOutput {
  /** Amount to subtract from the weights: w_new = w − delta (after decoupled decay, if any). */
  delta: tf.Tensor;
  slots: Slots;
}

/** One algorithm's maths, a pure function of tensors; all state lives in the optimizer. */
export interface UpdateRule {
  /** Slot names, in checkpoint order. */
  readonly slots: readonly string[];
  /** How decoupled decay combines with `delta` (see `applyUpdate`). */
  readonly decoupledStyle: 'multiplicative' | 'additive';
  compute(input: RuleInput): RuleOutput;
}

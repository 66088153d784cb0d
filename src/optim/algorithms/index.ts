import type { Algorithm } from '../types';
import type { UpdateRule } from './rule';
import { sgdRule, momentumRule, nesterovRule } from './sgd';
import { adamRule } from './adam';
import { rmspropRule } from './rmsprop';
import { larsRule } from './lars';

/** The `*w` algorithms share their base rule; what differs is the (decoupled) decay mode. */
export const RULES: Record<Algorithm, UpdateRule> = {
  sgd: sgdRule,
  sgdw: sgdRule,
  momentum: momentumRule,
  momentumw: momentumRule,
  nesterov: nesterovRule,
  adam: adamRule,
  adamw: adamRule,
  rmsprop: rmspropRule,
  lars: larsRule,
};

/** Algorithms whose decay is decoupled by definition. */
export const DECOUPLED_ONLY: ReadonlySet<Algorithm> = new Set<Algorithm>(['adamw', 'sgdw', 'momentumw']);

/** Algorithms that read `momentum` (for the others it is ignored). */
export const USES_MOMENTUM: ReadonlySet<Algorithm> = new Set<Algorithm>(['momentum', 'momentumw', 'nesterov', 'lars', 'rmsprop']);

export type { UpdateRule, RuleInput, RuleOutput } from './rule';

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

export type { UpdateRule, RuleInput, RuleOutput } from './rule';

/**
 * A schedule for any per-group hyper-parameter, like timm's `param_group_field` and fastai's ParamScheduler: before
 * every optimizer step, each group's `field` is set to `value(base, step, epoch)`, where `base` is the group's value
 * when the scheduler was built. A pure function of the step, so a resumed run sets exactly what the first one did.
 *
 * The learning rate takes the same shape (base × factor) through the step's `lrFactor` instead
 * (src/train/loop/lr-schedule.ts): the guard's cut and the ratio monitor's per-group nudges compose with it.
 */
import { ConfigError } from '../errors';
import type { Algorithm, ParamGroup } from '../optim/types';
import { oneCycleAt, type OneCycleConfig } from '../schedules/one-cycle';
import { CALLBACK_ORDER, type Callback, type StepControl } from './callbacks';

/** The group fields a ParamScheduler can drive. `beta1` is Adam's first-moment decay (`betas[0]`). */
export const SCHEDULED_FIELDS = ['weightDecay', 'momentum', 'beta1'] as const;
export type ScheduledField = (typeof SCHEDULED_FIELDS)[number];

/** The groups as a scheduler reads and writes them (GroupedOptimizer has this shape). */
export interface ScheduledOptimizer {
  readonly groups: ReadonlyArray<{ name: string; weightDecay: number; momentum: number; betas: [number, number] }>;
  updateGroup(name: string, patch: Partial<Omit<ParamGroup, 'name' | 'params'>>): void;
}

type Group = ScheduledOptimizer['groups'][number];

const FIELDS: Record<ScheduledField, { read(g: Group): number; patch(g: Group, v: number): Partial<ParamGroup> }> = {
  weightDecay: { read: (g) => g.weightDecay, patch: (_g, v) => ({ weightDecay: v }) },
  momentum: { read: (g) => g.momentum, patch: (_g, v) => ({ momentum: v }) },
  beta1: { read: (g) => g.betas[0], patch: (g, v) => ({ betas: [v, g.betas[1]] }) },
};

/** A group's value at a step, from its base value. */
export type ScheduleValue = (base: number, step: number, epoch: number) => number;

/** base × factor(step, epoch): what the weight-decay schedule does. */
export function scaled(factor: (step: number, epoch: number) => number): ScheduleValue {
  return (base, step, epoch) => base * factor(step, epoch);
}

/** The same value for every group, whatever its base: what one-cycle's momentum does (PyTorch sets it outright). */
export function absolute(value: (step: number, epoch: number) => number): ScheduleValue {
  return (_base, step, epoch) => value(step, epoch);
}

export class ParamScheduler implements Callback {
  readonly order: number = CALLBACK_ORDER.paramSchedule;
  readonly name: string;
  private readonly base: Map<string, number>;

  constructor(
    readonly field: ScheduledField,
    private readonly value: ScheduleValue,
    private readonly optimizer: ScheduledOptimizer,
    name = `${field} schedule`,
  ) {
    this.name = name;
    this.base = new Map(optimizer.groups.map((g) => [g.name, FIELDS[field].read(g)]));
  }

  /** Every group's value at this step. */
  valuesAt(step: number, epoch: number): Record<string, number> {
    return Object.fromEntries([...this.base].map(([name, base]) => [name, this.value(base, step, epoch)]));
  }

  beforeStep(s: StepControl): void {
    const groups = new Map(this.optimizer.groups.map((g) => [g.name, g]));
    for (const [name, v] of Object.entries(this.valuesAt(s.step, s.epoch))) {
      this.optimizer.updateGroup(name, FIELDS[this.field].patch(groups.get(name)!, v));
    }
  }
}

/** The field one-cycle's momentum drives: Adam's beta1, else the heavy-ball momentum (as PyTorch's OneCycleLR). */
export function momentumField(algorithm: Algorithm, path: string): ScheduledField {
  if (algorithm === 'adam' || algorithm === 'adamw') return 'beta1';
  if (algorithm === 'sgd' || algorithm === 'sgdw') {
    throw new ConfigError(path, `optimizer.algorithm ${algorithm} has no momentum to cycle; use momentum, nesterov, momentumw, lars, rmsprop, adam or adamw`);
  }
  return 'momentum';
}

/**
 * One-cycle's momentum (PyTorch OneCycleLR `cycle_momentum`): from maxMomentum down to baseMomentum at the peak
 * rate and back, set on every group before each step; held at its last value past the cycle, as the rate is.
 */
export function oneCycleMomentum(cfg: OneCycleConfig, totalSteps: number, algorithm: Algorithm, optimizer: ScheduledOptimizer): ParamScheduler {
  const field = momentumField(algorithm, 'schedule.cycleMomentum');
  return new ParamScheduler(
    field,
    absolute((step) => oneCycleAt(cfg, totalSteps, Math.min(step, totalSteps - 1)).momentum),
    optimizer,
    'one-cycle momentum',
  );
}

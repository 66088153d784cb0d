/**
 * fastai's `Learner.fine_tune(epochs, base_lr, freeze_epochs, lr_mult, pct_start, div)` as one run of
 * `train.freezeEpochs + train.epochs` epochs over one optimizer (fastai/callback/schedule.py):
 *
 *     self.freeze()
 *     self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99)
 *     base_lr /= 2
 *     self.unfreeze()
 *     self.fit_one_cycle(epochs, slice(base_lr/lr_mult, base_lr), pct_start=pct_start, div=div)
 *
 * The job's groups carry the second (unfrozen) phase's rates, fastai's slice(base_lr/2/lr_mult, base_lr/2); its
 * one-cycle schedule is that phase's (pct_start, div). The frozen phase runs the head's layer group at twice its
 * rate (fastai's base_lr before the halving) and every other layer group at a tenth of that (what slice(base_lr)
 * gives all but the last group), with fit_one_cycle's defaults pct_start 0.99 and div 25, ending at the same
 * fraction of its peak as the second cycle (fastai's div_final is the same 1e5 in both calls).
 *
 * Freezing is fastai's `train_bn=True`: in the frozen phase every BatchNorm γ/β keeps training (at its group's
 * rate) and BatchNorm keeps its batch statistics; only the other body variables stand still. They stand still by
 * being left out of the loop's gradient computation for the phase (a FreezePolicy, src/train/loop/trainable.ts),
 * as PyTorch's `requires_grad = False` leaves them out of autograd: no gradient of theirs is computed, so the
 * optimizer leaves their weights and their state untouched (`grad is None`) and they start the second phase with
 * fresh Adam/momentum state, as fastai's frozen parameters do. fit_one_cycle does not reset the optimizer between the two calls, and neither
 * does this: the head's state carries over.
 *
 * Everything is a pure function of the global step, so a run resumed in either phase repeats the first bit for bit.
 */
import { ConfigError } from '../errors';
import type { Job } from '../config/schema';
import type { GroupPlan } from '../groups';
import { HEAD_LAYERS } from '../models/network';
import type { GroupedOptimizer } from '../optim/grouped-optimizer';
import { oneCycleAt, type OneCycleConfig } from '../schedules/one-cycle';
import { CALLBACK_ORDER, type Callback, type StepControl } from './callbacks';
import { absolute, momentumField, ParamScheduler } from './param-scheduler';
import type { FreezePolicy } from './loop/trainable';

/** What fine_tune passes to its first fit_one_cycle: pct_start 0.99 and fit_one_cycle's default div 25. */
export const FROZEN_PHASE_CYCLE = { pctStart: 0.99, divFactor: 25 } as const;
/** fastai's slice(base_lr): the last group at base_lr, every earlier one at base_lr / 10. */
const FROZEN_BODY_DIVISOR = 10;
/** fine_tune halves base_lr between the phases: the frozen phase's head rate is twice the unfrozen one's. */
const FROZEN_HEAD_MULTIPLIER = 2;

export interface FineTunePhase {
  name: 'frozen' | 'unfrozen';
  epochs: number;
  /** Global step of the phase's first optimizer step, and its length in steps. */
  firstStep: number;
  steps: number;
  cycle: OneCycleConfig;
  /** Each optimizer (param) group's configured rate in this phase, at the cycle's peak. */
  rates: Record<string, number>;
}

export interface FineTunePlan {
  phases: [FineTunePhase, FineTunePhase];
  /** Variables the frozen phase does not differentiate: the body's, except BatchNorm γ/β. */
  frozenFirst: string[];
  totalEpochs: number;
}

const HEAD = new Set<string>(HEAD_LAYERS);

/** The two phases of a job with `train.freezeEpochs > 0`, or a one-line ConfigError where the job cannot be one. */
export function planFineTune(job: Job, plan: GroupPlan, stepsPerEpoch: number): FineTunePlan {
  const at = 'train.freezeEpochs';
  const s = job.schedule;
  if (s.type !== 'onecycle') {
    throw new ConfigError(at, `fastai's fine_tune runs one-cycle in both phases: set schedule.type onecycle (it is ${s.type})`);
  }
  if (s.totalSteps !== undefined) throw new ConfigError('schedule.totalSteps', 'a two-phase run sizes each cycle to its phase; remove it');
  if (job.warmup !== undefined && job.warmup.type !== 'none') {
    throw new ConfigError('warmup', 'a two-phase run warms up inside each one-cycle; set warmup.type none or remove it');
  }
  if (job.plateau !== undefined)
    throw new ConfigError('plateau', 'reduce-on-plateau does not compose with the two one-cycles of train.freezeEpochs; remove it');
  const rows = plan.rows.filter((r) => !r.frozen && r.paramGroup !== null);
  const headRows = rows.filter((r) => HEAD.has(r.layer));
  if (headRows.length === 0) throw new ConfigError(at, 'the head is frozen: nothing would train in the frozen phase');
  const headGroups = new Set(headRows.map((r) => r.group));
  if (headGroups.size !== 1) throw new ConfigError('groups', `the head spans layer groups ${[...headGroups].join(', ')}; fine_tune needs it in one`);
  const layerRate = new Map(plan.layerGroups.map((g) => [g.name, g.lr]));
  const headGroup = [...headGroups][0];
  const headRate = layerRate.get(headGroup) ?? 0;
  const frozenLayerRate = (group: string) => FROZEN_HEAD_MULTIPLIER * headRate * (group === headGroup ? 1 : 1 / FROZEN_BODY_DIVISOR);
  const first: Record<string, number> = {};
  const second: Record<string, number> = {};
  for (const g of plan.groups) {
    second[g.name] = g.lr;
    // the group's own multiplier (bias, norm, a rule's lrMult) over its layer group's rate carries to the frozen phase
    const members = rows.filter((r) => r.paramGroup === g.name);
    const rates = new Set(
      members.map((r) => {
        const base = layerRate.get(r.group) ?? 0;
        return base > 0 ? (g.lr / base) * frozenLayerRate(r.group) : 0;
      }),
    );
    if (rates.size > 1) {
      throw new ConfigError(
        'groups',
        `optimizer group ${g.name} holds layers of the head's and the body's groups, which the frozen phase gives different rates`,
      );
    }
    first[g.name] = [...rates][0] ?? 0;
  }
  const frozenFirst = rows.filter((r) => !HEAD.has(r.layer) && r.role !== 'norm').map((r) => r.name);
  const f = job.train.freezeEpochs;
  const e = job.train.epochs;
  const unfrozen: OneCycleConfig = s;
  const frozen: OneCycleConfig = {
    ...s,
    ...FROZEN_PHASE_CYCLE,
    // the same end point relative to the peak in both cycles (fastai's div_final)
    finalDivFactor: (s.divFactor * s.finalDivFactor) / FROZEN_PHASE_CYCLE.divFactor,
  };
  return {
    phases: [
      { name: 'frozen', epochs: f, firstStep: 0, steps: f * stepsPerEpoch, cycle: frozen, rates: first },
      { name: 'unfrozen', epochs: e, firstStep: f * stepsPerEpoch, steps: e * stepsPerEpoch, cycle: unfrozen, rates: second },
    ],
    frozenFirst,
    totalEpochs: f + e,
  };
}

/** The phase a global step belongs to (0: frozen, 1: unfrozen). */
export function phaseIndexAt(plan: FineTunePlan, step: number): 0 | 1 {
  return step < plan.phases[1].firstStep ? 0 : 1;
}

/** Rate (relative to the phase's peak) and momentum at a global step; held at the end past the last cycle. */
export function fineTuneAt(plan: FineTunePlan, step: number): { phase: 0 | 1; lr: number; momentum: number } {
  const phase = phaseIndexAt(plan, step);
  const p = plan.phases[phase];
  // a one-step phase has no rise and fall: PyTorch would divide by zero, fastai runs it at the start rate
  if (p.steps < 2) return { phase, lr: 1 / p.cycle.divFactor, momentum: p.cycle.maxMomentum };
  return { phase, ...oneCycleAt(p.cycle, p.steps, Math.min(step - p.firstStep, p.steps - 1)) };
}

/** One line per phase for the run log and `plan`: epochs, cycle shape and every group's peak rate. */
export function describeFineTune(plan: FineTunePlan, scale: number): string[] {
  const n = (x: number) => Number(x.toPrecision(4)).toString();
  return plan.phases.map((p) => {
    const rates = Object.entries(p.rates)
      .map(([g, lr]) => `${g} ${n(lr * scale)}`)
      .join(', ');
    const what = p.name === 'frozen' ? 'head and BatchNorm γ/β only' : 'everything';
    return (
      `${p.name} phase: ${p.epochs} epoch(s) = ${p.steps} steps from step ${p.firstStep}, ${what}; one-cycle pct_start ${p.cycle.pctStart}, ` +
      `div ${p.cycle.divFactor}, final div ${n(p.cycle.finalDivFactor)}; peak rates ${rates}`
    );
  });
}

const NOTHING_FROZEN: ReadonlySet<string> = new Set();

/**
 * The run-time side: before each step it puts the step's phase rates on the optimizer's groups (once per phase
 * change), and as the loop's freeze policy it names the variables the frozen phase leaves out of the gradients.
 */
export class FineTune implements Callback, FreezePolicy {
  readonly name = 'fine-tune phases';
  readonly order = CALLBACK_ORDER.paramSchedule;
  private readonly frozenFirst: ReadonlySet<string>;
  private applied: 0 | 1 | null = null;

  constructor(
    readonly plan: FineTunePlan,
    private readonly optimizer: GroupedOptimizer,
    private readonly scale: number,
  ) {
    this.frozenFirst = new Set(plan.frozenFirst);
  }

  /** The step's rate multiplier for the configured rates (the lr policy's factor). */
  factor(step: number): number {
    return this.scale * fineTuneAt(this.plan, step).lr;
  }

  beforeStep(s: StepControl): void {
    const phase = phaseIndexAt(this.plan, s.step);
    if (this.applied === phase) return;
    for (const [group, lr] of Object.entries(this.plan.phases[phase].rates)) this.optimizer.updateGroup(group, { lr });
    this.applied = phase;
  }

  frozenAt(step: number): ReadonlySet<string> {
    return phaseIndexAt(this.plan, step) === 0 ? this.frozenFirst : NOTHING_FROZEN;
  }
}

/** One-cycle's momentum (fastai's moms 0.95 → 0.85 → 0.95) cycled within each phase, when the schedule asks for it. */
export function fineTuneMomentum(plan: FineTunePlan, job: Job, optimizer: GroupedOptimizer): ParamScheduler[] {
  if (job.schedule.type !== 'onecycle' || !job.schedule.cycleMomentum) return [];
  const field = momentumField(job.optimizer.algorithm, 'schedule.cycleMomentum');
  return [
    new ParamScheduler(
      field,
      absolute((step) => fineTuneAt(plan, step).momentum),
      optimizer,
      'fine-tune momentum',
    ),
  ];
}

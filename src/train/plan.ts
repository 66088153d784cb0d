/**
 * The dry run's numbers: every variable's group, role, learning rate at step 0, at the end of warmup and at the last
 * step, weight decay and frozen state, per variable and per layer, with the plan's own warnings. Pure arithmetic
 * over a prepared job (`prepare()`); `layertune plan` prints it, a script can read it.
 */
import type { Prepared } from '../job';
import { collapseByLayer, type VarRole } from '../groups';
import type { DecayMode } from '../optim/types';
import { lrPlan, type LrPlan } from '../schedules/plan';
import { planLrWdWarnings } from '../tune/rules';

export interface LrPoints {
  start: number;
  /** The rate at the first step after warmup (= start when there is no warmup). */
  warmupEnd: number;
  end: number;
}

/** One element of `plan --json`. */
export interface VariablePlan {
  name: string;
  layer: string;
  group: string;
  role: VarRole;
  frozen: boolean;
  lr: LrPoints;
  weightDecay: number;
  decayMode: DecayMode;
  /** The optimizer group the variable is in (null when frozen), its algorithm and momentum. */
  paramGroup: string | null;
  algorithm: string;
  momentum: number;
}

/** One element of `plan --json --by layer`. */
export interface LayerPlan {
  layer: string;
  group: string;
  variables: string[];
  frozen: boolean;
  lr: Partial<Record<VarRole, LrPoints>>;
  weightDecay: Partial<Record<VarRole, number>>;
  decayMode: DecayMode;
}

export interface JobPlan {
  lr: LrPlan;
  /** Schedule factors at the three points (plateau left out: it depends on metrics not seen yet). */
  factors: LrPoints;
  variables: VariablePlan[];
  layers: LayerPlan[];
  warnings: string[];
}

/** The plan of a prepared job: pure arithmetic over its group plan and resolved schedule. */
export function buildPlan(p: Prepared): JobPlan {
  const resolved = p.schedule.resolved;
  const { stepsPerEpoch, totalSteps, warmup } = resolved.lr;
  const at = (step: number) => resolved.factor(step, Math.floor(step / stepsPerEpoch));
  const factors: LrPoints = { start: at(0), warmupEnd: at(warmup.steps), end: at(totalSteps - 1) };
  const times = (lr: number): LrPoints => ({ start: lr * factors.start, warmupEnd: lr * factors.warmupEnd, end: lr * factors.end });
  const momentumOf = new Map(p.plan.groups.map((g) => [g.name, g.momentum]));
  const variables = p.plan.rows.map((r) => ({
    name: r.name,
    layer: r.layer,
    group: r.group,
    role: r.role,
    frozen: r.frozen,
    lr: times(r.lr),
    weightDecay: r.weightDecay,
    decayMode: r.decayMode,
    paramGroup: r.paramGroup,
    algorithm: p.plan.algorithm,
    momentum: (r.paramGroup !== null ? momentumOf.get(r.paramGroup) : undefined) ?? p.plan.optimizer.momentum,
  }));
  const layers = collapseByLayer(p.plan.rows).map((l) => ({
    ...l,
    lr: Object.fromEntries(Object.entries(l.lr).map(([role, lr]) => [role, times(lr as number)])) as LayerPlan['lr'],
  }));
  // grouping warnings were already printed by prepare(); these are the plan's own
  const warnings: string[] = [];
  const eff = resolved.lr.effectiveBatch;
  if (eff > p.data.train.length) {
    warnings.push(
      `the effective batch ${eff} (batch ${p.job.train.batch} × accumulate ${p.job.train.accumulate}) is larger than the ${p.data.train.length} training images: ` +
        `each optimizer step averages over at most ${p.data.train.length} images while the rates are scaled for ${eff}`,
    );
  }
  // rule of thumb: a group's rate and decay two to three orders of magnitude apart (lr/wd within 10…10⁴)
  for (const w of planLrWdWarnings(p)) warnings.push(w.message);
  return { lr: lrPlan(resolved), factors, variables, layers, warnings };
}

/** The resolved learning-rate numbers as `layertune plan` shows them: one JSON-able object and its text lines. */
import { planPoints, type PlanPoint, type ResolvedSchedule } from './resolve';
import type { ResolvedLr, ResolvedWarmup } from './scaling';

export interface LrPlan extends Omit<ResolvedLr, 'warmup'> {
  /** The base schedule in one line, e.g. `multistep milestones=[30,60] gamma=0.1 per=epoch`. */
  schedule: string;
  warmup: ResolvedWarmup & {
    epochs: number;
    /** The reference rate at step 0 of the warmup. */
    startLr: number;
  };
  plateau: string | null;
  points: PlanPoint[];
}

/** Everything `plan --json` needs about the rate; multiply a group's configured rate by a point's factor for its rate. */
export function lrPlan(resolved: ResolvedSchedule): LrPlan {
  const { lr, config } = resolved;
  const points = planPoints(resolved);
  const p = config.plateau;
  const { type, ...scheduleFields } = config.schedule;
  const fields = Object.entries(scheduleFields)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : v}`)
    .join(' ');
  return {
    ...lr,
    schedule: fields ? `${type} ${fields}` : type,
    warmup: {
      ...lr.warmup,
      epochs: lr.warmup.steps / lr.stepsPerEpoch,
      startLr: lr.warmup.steps > 0 ? points[0].lr : lr.peak,
    },
    plateau: p
      ? `${p.monitor} ${p.mode} factor=${p.factor} patience=${p.patience} cooldown=${p.cooldown} ` +
        `maxReductions=${p.maxReductions ?? '∞'} stopAtFraction=${p.stopAtFraction ?? 'off'}`
      : null,
    points,
  };
}

const num = (x: number): string => Number(x.toPrecision(6)).toString();

/** Human-readable lines for `layertune plan`. */
export function formatLrPlan(plan: LrPlan): string[] {
  const scaleText =
    plan.scaling === 'none'
      ? 'no scaling'
      : `${plan.scaling} scaling ×${num(plan.scale)} (effective batch ${plan.effectiveBatch} / baseBatch ${plan.baseBatch})`;
  const lines = [
    `lr        base ${num(plan.base)} → peak ${num(plan.peak)}: ${scaleText}`,
    `schedule  ${plan.schedule}; ${plan.totalSteps} steps = ${plan.epochs} epochs × ${plan.stepsPerEpoch} steps`,
  ];
  const w = plan.warmup;
  lines.push(
    w.type === 'none'
      ? 'warmup    none'
      : `warmup    ${w.type}, ${w.steps} steps (${num(w.epochs)} epochs) from ${num(w.startLr)} ` +
          `(×${num(w.startFactor)} of the target)${w.source === 'scaling-default' ? ", the linear scaling rule's default" : ''}`,
  );
  if (plan.plateau) lines.push(`plateau   ${plan.plateau}`);
  for (const pt of plan.points) {
    lines.push(
      `  ${pt.label.padEnd(9)} step ${String(pt.step).padStart(6)} epoch ${String(pt.epoch).padStart(4)}  factor ${num(pt.factor).padEnd(10)} lr ${num(pt.lr)}`,
    );
  }
  return lines;
}

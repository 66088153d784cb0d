/**
 * PyTorch's OneCycleLR (Smith & Topin 2018) as closed forms over the step counter, so any step can be evaluated
 * on its own (exact resume, `plan`). Rates are returned relative to the peak (max_lr = 1): the run's peak rate
 * and every group's configured rate multiply them, as for every other base schedule.
 */

export interface OneCycleConfig {
  /** Fraction of the cycle spent rising to the peak. */
  pctStart: number;
  /** Start rate = peak / divFactor. */
  divFactor: number;
  /** Final rate = start rate / finalDivFactor. */
  finalDivFactor: number;
  annealStrategy: 'cos' | 'linear';
  /** Rise, fall back to the start rate symmetrically, then anneal to the final rate (fastai's original shape). */
  threePhase: boolean;
  /** Momentum runs opposite to the rate, from maxMomentum down to baseMomentum at the peak and back. */
  baseMomentum: number;
  maxMomentum: number;
}

interface Phase {
  endStep: number;
  startLr: number;
  endLr: number;
  startMomentum: number;
  endMomentum: number;
}

function anneal(strategy: OneCycleConfig['annealStrategy'], start: number, end: number, pct: number): number {
  if (strategy === 'linear') return (end - start) * pct + start;
  return end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
}

// PyTorch builds the phase boundaries from float(pct_start * total_steps) - 1, fractional steps included.
function phases(cfg: OneCycleConfig, totalSteps: number): Phase[] {
  const initial = 1 / cfg.divFactor;
  const min = initial / cfg.finalDivFactor;
  const up = cfg.pctStart * totalSteps - 1;
  const { baseMomentum: lo, maxMomentum: hi } = cfg;
  if (cfg.threePhase) {
    return [
      { endStep: up, startLr: initial, endLr: 1, startMomentum: hi, endMomentum: lo },
      { endStep: 2 * cfg.pctStart * totalSteps - 2, startLr: 1, endLr: initial, startMomentum: lo, endMomentum: hi },
      { endStep: totalSteps - 1, startLr: initial, endLr: min, startMomentum: hi, endMomentum: hi },
    ];
  }
  return [
    { endStep: up, startLr: initial, endLr: 1, startMomentum: hi, endMomentum: lo },
    { endStep: totalSteps - 1, startLr: 1, endLr: min, startMomentum: lo, endMomentum: hi },
  ];
}

/** Rate (relative to the peak) and momentum at `step` of a cycle of `totalSteps` optimizer steps. */
export function oneCycleAt(cfg: OneCycleConfig, totalSteps: number, step: number): { lr: number; momentum: number } {
  const ps = phases(cfg, totalSteps);
  let start = 0;
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i];
    if (step <= p.endStep || i === ps.length - 1) {
      const pct = (step - start) / (p.endStep - start);
      return {
        lr: anneal(cfg.annealStrategy, p.startLr, p.endLr, pct),
        momentum: anneal(cfg.annealStrategy, p.startMomentum, p.endMomentum, pct),
      };
    }
    start = p.endStep;
  }
  throw new Error('unreachable: the last phase always matches');
}

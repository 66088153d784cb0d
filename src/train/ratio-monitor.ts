/**
 * Watches ‖Δw‖/‖w‖ per group (Karpathy's "about 1e-3" rule). The trainer already passes the ratios of the
 * update actually applied (BatchInfo.updateRatios, from the optimizer's own norms, no extra pass) and the
 * metrics log records them; this callback turns them into warnings and, optionally, small corrections.
 */
import { parseOrThrow } from '../optim/schema';
import { RatioMonitorSchema, type RatioMonitorConfig, type RatioMonitorInput } from '../tune/schema';
import { CALLBACK_ORDER, type BatchInfo, type Callback } from './callbacks';

/** The part of GroupedOptimizer the monitor needs to nudge a group. */
export interface AdjustableOptimizer {
  readonly groups: ReadonlyArray<{ name: string; lr: number }>;
  updateGroup(name: string, patch: { lr: number }): void;
}

export interface RatioWarning {
  step: number;
  group: string;
  /** Geometric mean of the ratio over the window that triggered the warning. */
  ratio: number;
  /** Factor the group's rate would need to bring the ratio to the target (the ratio scales with the rate). */
  factor: number;
  direction: 'low' | 'high';
  /** The multiplier now applied to the group's configured rate, when autoAdjust changed it. */
  multiplier?: number;
  message: string;
}

/** Geometric mean, the right average for ratios spread over orders of magnitude. */
export function geometricMean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

/**
 * One adjustment step: move the group's multiplier by the needed factor, at most ×/÷ maxStep per step,
 * and keep the cumulative multiplier within [minMult, maxMult].
 */
export function nudge(current: number, needed: number, cfg: Pick<RatioMonitorConfig, 'maxStep' | 'minMult' | 'maxMult'>): number {
  const step = Math.min(cfg.maxStep, Math.max(1 / cfg.maxStep, needed));
  return Math.min(cfg.maxMult, Math.max(cfg.minMult, current * step));
}

export class RatioMonitor implements Callback {
  readonly name = 'ratio monitor';
  readonly order = CALLBACK_ORDER.ratioMonitor;
  readonly cfg: RatioMonitorConfig;
  readonly warnings: RatioWarning[] = [];
  /** Recent out-of-range ratios per group (cleared when a step is back in range). */
  private readonly outside = new Map<string, number[]>();
  /** Multiplier autoAdjust has applied per group, and each group's rate before any adjustment. */
  readonly multipliers = new Map<string, number>();
  private readonly baseLr = new Map<string, number>();
  private readonly announced = new Map<string, 'low' | 'high'>();

  constructor(
    input: RatioMonitorInput = {},
    private readonly opts: { optimizer?: AdjustableOptimizer; log?: (line: string) => void } = {},
  ) {
    this.cfg = parseOrThrow(RatioMonitorSchema, input, 'tune.ratioMonitor');
    if (this.cfg.autoAdjust && !opts.optimizer) throw new Error('RatioMonitor: autoAdjust needs the optimizer');
    for (const g of opts.optimizer?.groups ?? []) this.baseLr.set(g.name, g.lr);
  }

  afterStep(b: BatchInfo): void {
    if (!b.updateRatios) return;
    const { low, high, patience, target } = this.cfg;
    for (const [group, r] of Object.entries(b.updateRatios)) {
      // 0: the group did not move or has zero weights (a fresh bias); no information about its rate
      if (!(r > 0) || !Number.isFinite(r)) continue;
      if (r >= low && r <= high) {
        this.outside.delete(group);
        this.announced.delete(group);
        continue;
      }
      const run = this.outside.get(group) ?? [];
      // a run counts only while it stays on one side
      if (run.length && run[0] < low !== r < low) run.length = 0;
      run.push(r);
      this.outside.set(group, run);
      if (run.length < patience) continue;
      this.outside.delete(group);
      const ratio = geometricMean(run);
      const factor = target / ratio;
      const direction = ratio < low ? 'low' : 'high';
      let multiplier: number | undefined;
      let msg =
        `update/weight ratio of group ${group} was ${direction === 'low' ? 'below' : 'above'} ` +
        `[${low.toExponential(0)}, ${high.toExponential(0)}] for ${patience} steps (geometric mean ${ratio.toExponential(2)}): ` +
        `its learning rate would need x${factor.toPrecision(3)} to reach ${target.toExponential(0)}`;
      if (this.cfg.autoAdjust && this.opts.optimizer) {
        const base = this.baseLr.get(group);
        if (base !== undefined) {
          const before = this.multipliers.get(group) ?? 1;
          multiplier = nudge(before, factor, this.cfg);
          this.multipliers.set(group, multiplier);
          this.opts.optimizer.updateGroup(group, { lr: base * multiplier });
          msg += `; autoAdjust: rate x${(multiplier / before).toPrecision(3)} (now x${multiplier.toPrecision(3)} of configured)`;
        }
      }
      const w: RatioWarning = { step: b.step, group, ratio, factor, direction, multiplier, message: msg };
      this.warnings.push(w);
      // every episode is recorded; the log hears about a group once per side until it comes back in range
      // (an adjustment is always told), so a long run's output is not one warning per K steps
      if (multiplier === undefined && this.announced.get(group) === direction) continue;
      this.announced.set(group, direction);
      (this.opts.log ?? ((s: string) => console.warn(`warning: ${s}`)))(msg + (multiplier === undefined ? ' (told once until it returns to range)' : ''));
    }
  }
}

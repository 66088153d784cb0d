/**
 * Median stopping (Golovin et al. 2017, Google Vizier): a trial is cut at epoch e when its best score so far is
 * worse than the median of the best-so-far scores that finished trials had reached by the same epoch.
 * Scores are "higher is better" (a loss enters negated).
 */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

function bestUpTo(curve: number[], e: number): number {
  let b = -Infinity;
  for (let i = 0; i <= e && i < curve.length; i++) if (curve[i] > b) b = curve[i];
  return b;
}

export interface MedianStopOptions {
  /** Finished trials that must have reached epoch e before the rule applies there. */
  minTrials: number;
  /** Epochs every trial runs before it can be cut. */
  graceEpochs: number;
}

/**
 * Should a trial whose per-epoch scores so far are `current` stop now? `finished`: the per-epoch score curves of
 * completed trials. Returns the median it lost to, or null to continue.
 */
export function medianStop(current: number[], finished: number[][], opts: MedianStopOptions): { median: number; best: number } | null {
  const e = current.length - 1;
  if (e < 0 || current.length <= opts.graceEpochs) return null;
  const peers = finished.filter((c) => c.length > e).map((c) => bestUpTo(c, e));
  if (peers.length < opts.minTrials) return null;
  const m = median(peers);
  const best = bestUpTo(current, e);
  return best < m ? { median: m, best } : null;
}

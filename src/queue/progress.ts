/** A queued search's progress as counts, its ETA, and the line `--status` and the waiting submitter print. */

export interface Progress {
  done: number;
  pruned: number;
  diverged: number;
  /** Trials a worker holds now. */
  running: number;
  /** Trials that failed every attempt (left out of the summary). */
  failed: number;
  /** Trials queued and not yet taken (waiting, or delayed for a retry's backoff). */
  waiting: number;
  /** Trials with neither a record nor a job: removed by --cancel, queued again by the next run. */
  notQueued: number;
  total: number;
}

/** Trials that will not run again in this flow: they have a record. */
export const finishedOf = (p: Progress): number => p.done + p.pruned + p.diverged;

/**
 * Seconds until the search ends, seen from any machine: the trials still to run (waiting and running) at the mean
 * time of the trials finished so far, spread over the workers busy now (one running trial = one busy slot, the only
 * measure of the pool another process has). A running trial counts whole, so this errs late by up to one trial.
 * null when nothing has finished yet (no time to go by).
 */
export function etaSeconds(p: Progress, meanTrialS: number | null): number | null {
  const left = p.waiting + p.running;
  if (left === 0) return 0;
  if (meanTrialS === null) return null;
  return (left * meanTrialS) / Math.max(1, p.running);
}

export function formatProgress(p: Progress, etaS: number | null): string {
  return (
    `${finishedOf(p)}/${p.total} trials: ${p.done} done, ${p.running} running, ${p.pruned} pruned, ${p.diverged} diverged, ` +
    `${p.failed} failed, ${p.waiting} waiting` +
    (p.notQueued ? `, ${p.notQueued} not queued` : '') +
    (etaS !== null ? `, ETA ${Math.round(etaS)} s` : '')
  );
}

/**
 * How long a worker's claim on a job lasts (BullMQ `lockDuration`) and how often workers look for expired claims
 * (`stalledInterval`), sized from the training step time when one was measured.
 *
 * Why the step time barely matters, and why it still enters: every job runs in a sandboxed child process, and the
 * lock is renewed by the worker's own process every lockDuration / 2. That process never trains, so a step that
 * blocks the child's event loop for seconds does not delay a renewal. What can delay it is the parent itself being
 * slow: CPU starvation when the children keep every core busy, GC, swapping when a child's model crowds memory, a
 * slow round trip to Redis. Those hiccups are milliseconds to a few seconds on the machines the 30 s floor was chosen
 * for, where a step of this project's small CNNs takes well under a second. On a machine so loaded or so small that
 * one step takes seconds, everything the parent does is slowed by a similar factor, so the lock keeps at least
 * STEPS_PER_LOCK steps of margin. A lock that is too short costs a duplicate run of a whole job (harmless, records are
 * idempotent, but wasted); one that is too long only delays the pickup of a dead worker's job, by at most
 * lockDuration + stalledInterval. The cap keeps that delay bounded however slow the steps are.
 */

export interface LockSettings {
  lockDuration: number;
  stalledInterval: number;
}

/** The lock when nothing was measured, and the least it ever is: BullMQ's own default. */
export const LOCK_FLOOR_MS = 30000;
/** The most: a dead worker's job is retaken within lockDuration + stalledInterval = 15 min. */
export const LOCK_CAP_MS = 600000;
/** Steps of margin a lock keeps over a measured step time. */
export const STEPS_PER_LOCK = 30;

/**
 * `stepMs`: a measured training step (ms), or null. `floorMs`: the least lock (tests shorten it so a killed worker's
 * job is retaken within seconds). The stall check runs twice per lock, so an expired lock is found within half a
 * lock of expiring; it never runs more often than once a second (each check is a Redis script over the active list).
 */
export function lockSettings(stepMs: number | null, floorMs: number = LOCK_FLOOR_MS): LockSettings {
  const fromSteps = stepMs !== null && Number.isFinite(stepMs) && stepMs > 0 ? Math.ceil(STEPS_PER_LOCK * stepMs) : 0;
  const lockDuration = Math.max(floorMs, Math.min(LOCK_CAP_MS, fromSteps));
  return { lockDuration, stalledInterval: Math.max(1000, Math.round(lockDuration / 2)) };
}

/** Where a worker's step time came from: the --step-ms flag, the queue's recorded step times, or nowhere yet. */
export type StepSource = { from: 'flag'; stepMs: number } | { from: 'measured'; stepMs: number; jobs: number } | { from: 'none' };

/** The lock for a step-time source, and the one line a starting worker prints about where it came from. */
export function lockFor(source: StepSource, floorMs: number = LOCK_FLOOR_MS): LockSettings & { line: string } {
  if (source.from === 'none') return { ...lockSettings(null, floorMs), line: `lock ${floorMs} ms (floor; no step time measured yet)` };
  const lock = lockSettings(source.stepMs, floorMs);
  const what =
    source.from === 'flag'
      ? `--step-ms ${source.stepMs}`
      : `a measured step time of ${fmtMs(source.stepMs)} ms (median of ${source.jobs} finished job${source.jobs === 1 ? '' : 's'})`;
  const line =
    lock.lockDuration > floorMs
      ? `lock ${lock.lockDuration} ms from ${what}`
      : `lock ${lock.lockDuration} ms (floor; ${STEPS_PER_LOCK} steps of ${what} need only ${Math.ceil(STEPS_PER_LOCK * source.stepMs)} ms)`;
  return { ...lock, line };
}

const fmtMs = (ms: number) => String(Math.round(ms * 10) / 10);

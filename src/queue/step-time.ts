/**
 * Step times: measured in the sandboxed child while a job trains, recorded by the worker process in one Redis list
 * per queue, read back when a worker starts to size its lock (src/queue/lock.ts).
 *
 * One list for every machine that serves the queue: a median over mixed machines is what a worker of the usual
 * kind sees, and the lock keeps 30 steps of margin over it; a much slower machine raises its own lock after its
 * first job (runWorker re-creates its BullMQ Worker when a job measured slower steps than the lock allows).
 */
import type IORedis from 'ioredis';
import { median } from '../tune/median-stop';
import { CALLBACK_ORDER, type Callback } from '../train/callbacks';
import { QUEUE_NAME } from './connection';

/** The Redis list of recent per-job median step times (ms, newest first). */
export const STEP_TIMES_KEY = `${QUEUE_NAME}:step-ms`;
/** How many recent jobs' step times the list keeps: old machines and old configs age out. */
export const STEP_TIMES_KEPT = 50;

/**
 * Wall time of each optimizer step, from the previous step's end (or the epoch's start) to this step's end: the
 * forward and backward passes, the update and whatever the loop does between (loading the batch, the other
 * callbacks). Validation is left out: the clock restarts at every epoch.
 */
export class StepTimer implements Callback {
  readonly name = 'step timer';
  readonly order = CALLBACK_ORDER.DEFAULT;
  readonly ms: number[] = [];
  private last: number | null = null;
  constructor(private readonly now: () => number = () => performance.now()) {}
  beforeEpoch(): void {
    this.last = this.now();
  }
  afterStep(): void {
    const t = this.now();
    if (this.last !== null) this.ms.push(t - this.last);
    this.last = t;
  }
  afterEpoch(): void {
    this.last = null;
  }
  /** The median step (ms), rounded to 0.1 ms; null when no step ran (a reused record, a cancelled trial). */
  medianMs(): number | null {
    return this.ms.length ? Math.round(median(this.ms) * 10) / 10 : null;
  }
}

export interface RecordedStepTime {
  /** Median of the recorded per-job medians (ms). */
  medianMs: number;
  /** How many finished jobs it is over. */
  jobs: number;
}

/**
 * The median of the list's values, ignoring anything that is not a positive finite number (the list is shared:
 * another program, or a hand-edited value, must not shorten a lock); null when nothing usable is recorded.
 */
export function recordedStepTime(values: readonly string[]): RecordedStepTime | null {
  const ok = values.map(Number).filter((v) => Number.isFinite(v) && v > 0);
  return ok.length ? { medianMs: median(ok), jobs: ok.length } : null;
}

/** Adds one job's median step time, keeping the newest STEP_TIMES_KEPT. */
export async function recordStepTime(redis: IORedis, ms: number): Promise<void> {
  await redis
    .multi()
    .lpush(STEP_TIMES_KEY, String(ms))
    .ltrim(STEP_TIMES_KEY, 0, STEP_TIMES_KEPT - 1)
    .exec();
}

export async function readStepTimes(redis: IORedis): Promise<string[]> {
  return redis.lrange(STEP_TIMES_KEY, 0, -1);
}

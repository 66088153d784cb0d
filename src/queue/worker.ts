/**
 * `layertune worker`: takes trial, search-summary and submitted-job jobs from the queue and runs each in a
 * sandboxed child process (processor.js beside this file in dist/).
 *
 * Lock and stall settings (src/queue/lock.ts explains the sizing): the lock is renewed by this process every
 * lockDuration/2, and this process never trains (the child does), so renewal does not wait for a training step
 * however long it is. The lock has to outlast this process being slow (starved of CPU by its children, GC, swap, a
 * slow Redis round trip), which a measured step time scales. A dead worker's job is noticed at the next stall check
 * after its lock expires: at most lockDuration + stalledInterval later.
 *
 * The step time is measured, not asked for: every job's child reports its median step, this process records it
 * in Redis (src/queue/step-time.ts), and a starting worker sizes its lock from the median of the recorded ones.
 * `--step-ms` overrides that and pins the lock.
 */
import * as path from 'node:path';
import { type Job, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUE_NAME, QueueLostError, checkQueue, connectionOptions, shownUrl } from './connection';
import type { ChildResult } from './jobs';
import { LOCK_FLOOR_MS, type LockSettings, type StepSource, lockFor, lockSettings } from './lock';
import { readStepTimes, recordStepTime, recordedStepTime } from './step-time';

export interface WorkerOptions {
  concurrency: number;
  /** The least ms a job stays locked without renewal (tests shorten it so a killed worker's job is taken over quickly). */
  lockMs: number;
  /** A step time (ms) given by the user: sizes the lock instead of the recorded ones, and pins it. */
  stepMs?: number | null;
  log?: (s: string) => void;
}

export const DEFAULT_LOCK_MS = LOCK_FLOOR_MS;

/**
 * A BullMQ Worker that sees each child's result before BullMQ completes the job. That is the one point where it
 * can still stop the job's completion from fetching the next job: BullMQ's completion script takes the next job
 * in the same round trip, under the lock this Worker was built with, and a Worker's lock duration is fixed when
 * it is built. Closing here (BullMQ skips that fetch once closing) lets the next job go to a Worker built with
 * the longer lock.
 */
class MeasuringWorker extends Worker {
  onChildResult: (job: Job, stepMs: number | null) => Promise<void> = async () => {};
  protected override async callProcessJob(job: Job, token: string, signal?: AbortSignal): Promise<unknown> {
    const out = (await super.callProcessJob(job, token, signal)) as ChildResult;
    await this.onChildResult(job, out.stepMs);
    return out.result;
  }
}

/** Runs until SIGTERM/SIGINT (drains: the running jobs finish, nothing new is taken); a QueueLostError when Redis is gone. */
export async function runWorker(url: string, opts: WorkerOptions): Promise<number> {
  const log = opts.log ?? ((s: string) => console.log(s));
  await checkQueue(url);
  const connection = new IORedis(connectionOptions(url));
  let lost: string | null = null;
  const pinned = opts.stepMs != null;
  let source: StepSource;
  if (pinned) source = { from: 'flag', stepMs: opts.stepMs! };
  else {
    const rec = recordedStepTime(await readStepTimes(connection));
    source = rec ? { from: 'measured', stepMs: rec.medianMs, jobs: rec.jobs } : { from: 'none' };
  }
  const first = lockFor(source, opts.lockMs);
  log(first.line);
  let lock: LockSettings = first;
  let stopping = false;
  // a longer lock a finished job asked for, applied when the current Worker has closed
  let raise: { lock: LockSettings; why: string } | null = null;

  const started = (w: Worker) =>
    w
      .waitUntilReady()
      .then(() =>
        log(
          `worker on ${shownUrl(url)} (queue ${QUEUE_NAME}, concurrency ${opts.concurrency}, lock ${w.opts.lockDuration} ms, stall check every ${w.opts.stalledInterval} ms)`,
        ),
      );
  const build = (settings: LockSettings): MeasuringWorker => {
    const w = new MeasuringWorker(QUEUE_NAME, path.join(__dirname, 'processor.js'), {
      connection,
      concurrency: opts.concurrency,
      lockDuration: settings.lockDuration,
      stalledInterval: settings.stalledInterval,
      // a job whose worker died twice is retried through its attempts, not dropped as "stalled too often"
      maxStalledCount: 3,
      useWorkerThreads: false,
    });
    w.onChildResult = async (job, stepMs) => {
      if (stepMs === null || !(stepMs > 0)) return;
      // a Redis that went away loses one measurement, not the job: the lost-queue path reports the outage
      await recordStepTime(connection, stepMs).catch(() => {});
      if (pinned || stopping) return;
      const need = lockSettings(stepMs, opts.lockMs);
      // a job finishing while the Worker already closes for a raise may ask for more still
      const closing = raise !== null;
      if (need.lockDuration <= (raise?.lock ?? lock).lockDuration) return;
      // once per new slowest job: the lock only grows, so over n jobs this happens about ln(n) times
      raise = { lock: need, why: `job ${job.id} measured a step time of ${stepMs} ms` };
      // with --concurrency n, jobs still running finish first: the Worker takes none until then
      if (!closing) void w.close();
    };
    w.on('error', () => {});
    w.once('closed', () => {
      const next = raise;
      if (!next || stopping || lost) return;
      raise = null;
      lock = next.lock;
      log(`lock raised to ${lock.lockDuration} ms (stall check every ${lock.stalledInterval} ms): ${next.why}; the worker was re-created between jobs`);
      worker = build(lock);
      // a Redis gone meanwhile ends the process through the connection's 'end'
      started(worker).catch(() => {});
    });
    w.on('failed', (job, err) => log(`job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message.split('\n')[0]}`));
    w.on('stalled', (id) => log(`job ${id} stalled (its worker stopped renewing the lock): queued again`));
    return w;
  };

  let worker: MeasuringWorker = build(lock);
  const done = new Promise<number>((resolve) => {
    connection.on('end', () => {
      lost ??= `lost the queue at ${shownUrl(url)} (Redis stopped answering); finished trial records are in their search folders; rerun the search and restart workers when Redis is back`;
      resolve(3);
    });
    const drain = (sig: string) => {
      log(`${sig}: finishing the running job(s), taking no new ones`);
      stopping = true;
      worker.close().then(() => {
        // a Worker re-created while this one closed is closed too
        worker.close().then(() => resolve(0));
      });
    };
    process.once('SIGTERM', () => drain('SIGTERM'));
    process.once('SIGINT', () => drain('SIGINT'));
  });
  await started(worker);
  const code = await done;
  if (lost) {
    // the worker's own close would wait on a connection that will not come back
    worker.close(true).catch(() => {});
    throw new QueueLostError(lost);
  }
  connection.disconnect();
  return code;
}

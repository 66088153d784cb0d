/**
 * `layertune worker`: takes trial, search-summary and submitted-job jobs from the queue and runs each in a
 * sandboxed child process (processor.js beside this file in dist/).
 *
 * Lock and stall settings (src/queue/lock.ts explains the sizing): the lock is renewed by this process every
 * lockDuration/2, and this process never trains (the child does), so renewal does not wait for a training step
 * however long it is. The lock has to outlast this process being slow (starved of CPU by its children, GC, swap, a
 * slow Redis round trip), which a measured step time scales. A dead worker's job is noticed at the next stall check
 * after its lock expires: at most lockDuration + stalledInterval later.
 */
import * as path from 'node:path';
import { Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUE_NAME, QueueLostError, checkQueue, connectionOptions, shownUrl } from './connection';
import { LOCK_FLOOR_MS, lockSettings } from './lock';

export interface WorkerOptions {
  concurrency: number;
  /** The least ms a job stays locked without renewal (tests shorten it so a killed worker's job is taken over quickly). */
  lockMs: number;
  /** A measured training step time (ms) on this kind of machine, or null: raises the lock above `lockMs`. */
  stepMs?: number | null;
  log?: (s: string) => void;
}

export const DEFAULT_LOCK_MS = LOCK_FLOOR_MS;

/** Runs until SIGTERM/SIGINT (drains: the running jobs finish, nothing new is taken); a QueueLostError when Redis is gone. */
export async function runWorker(url: string, opts: WorkerOptions): Promise<number> {
  const log = opts.log ?? ((s: string) => console.log(s));
  await checkQueue(url);
  const connection = new IORedis(connectionOptions(url));
  let lost: string | null = null;
  const lock = lockSettings(opts.stepMs ?? null, opts.lockMs);
  const worker = new Worker(QUEUE_NAME, path.join(__dirname, 'processor.js'), {
    connection,
    concurrency: opts.concurrency,
    lockDuration: lock.lockDuration,
    stalledInterval: lock.stalledInterval,
    // a job whose worker died twice is retried through its attempts, not dropped as "stalled too often"
    maxStalledCount: 3,
    useWorkerThreads: false,
  });
  worker.on('error', () => {});
  worker.on('failed', (job, err) => log(`job ${job?.id ?? '?'} failed (attempt ${job?.attemptsMade ?? '?'}): ${err.message.split('\n')[0]}`));
  worker.on('stalled', (id) => log(`job ${id} stalled (its worker stopped renewing the lock): queued again`));
  const done = new Promise<number>((resolve) => {
    connection.on('end', () => {
      lost ??= `lost the queue at ${shownUrl(url)} (Redis stopped answering); finished trial records are in their search folders; rerun the search and restart workers when Redis is back`;
      resolve(3);
    });
    const drain = (sig: string) => {
      log(`${sig}: finishing the running job(s), taking no new ones`);
      worker.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => drain('SIGTERM'));
    process.once('SIGINT', () => drain('SIGINT'));
  });
  await worker.waitUntilReady();
  log(
    `worker on ${shownUrl(url)} (queue ${QUEUE_NAME}, concurrency ${opts.concurrency}, lock ${lock.lockDuration} ms, stall check every ${lock.stalledInterval} ms)`,
  );
  const code = await done;
  if (lost) {
    // the worker's own close would wait on a connection that will not come back
    worker.close(true).catch(() => {});
    throw new QueueLostError(lost);
  }
  connection.disconnect();
  return code;
}

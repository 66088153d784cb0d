/**
 * `layertune worker`: takes trial, search-summary and submitted-job jobs from the queue and runs each in a
 * sandboxed child process (processor.js beside this file in dist/).
 *
 * Lock and stall settings: the lock is renewed by this process every lockDuration/2, and this process never
 * trains (the child does), so renewal does not wait for a training step however long it is. The lock therefore
 * only has to outlast a renewal round trip plus a GC pause; the default 30 s is far above either. A dead worker's
 * job is noticed at the next stall check after its lock expires: at most lockDuration + stalledInterval later.
 */
import * as path from 'node:path';
import { Worker } from 'bullmq';
import IORedis from 'ioredis';
import { QUEUE_NAME, QueueLostError, checkQueue, connectionOptions, shownUrl } from './connection';

export interface WorkerOptions {
  concurrency: number;
  /** ms a job stays locked without renewal (tests shorten it so a killed worker's job is taken over quickly). */
  lockMs: number;
  log?: (s: string) => void;
}

export const DEFAULT_LOCK_MS = 30000;

/** Runs until SIGTERM/SIGINT (drains: the running jobs finish, nothing new is taken); a QueueLostError when Redis is gone. */
export async function runWorker(url: string, opts: WorkerOptions): Promise<number> {
  const log = opts.log ?? ((s: string) => console.log(s));
  await checkQueue(url);
  const connection = new IORedis(connectionOptions(url));
  let lost: string | null = null;
  const worker = new Worker(QUEUE_NAME, path.join(__dirname, 'processor.js'), {
    connection,
    concurrency: opts.concurrency,
    lockDuration: opts.lockMs,
    stalledInterval: Math.max(1000, Math.round(opts.lockMs / 2)),
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
  log(`worker on ${shownUrl(url)} (queue ${QUEUE_NAME}, concurrency ${opts.concurrency}, lock ${opts.lockMs} ms)`);
  const code = await done;
  if (lost) {
    // the worker's own close would wait on a connection that will not come back
    worker.close(true).catch(() => {});
    throw new QueueLostError(lost);
  }
  connection.disconnect();
  return code;
}

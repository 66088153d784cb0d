/** `layertune worker --queue URL`: runs queued trials and jobs. bullmq and ioredis load only when it runs. */
import type { Command } from 'commander';
import { ConfigError } from '../../errors';
import { num } from '../flags';

export function register(program: Command): void {
  program
    .command('worker')
    .description('take search trials and submitted jobs from a Redis queue (BullMQ), each in a sandboxed child process')
    .requiredOption('--queue <url>', 'redis://[user:password@]HOST:PORT/DB')
    .option('--concurrency <n>', 'jobs run at once (each in its own child process)', num, 1)
    .option('--lock-ms <ms>', "how long a job stays claimed without its worker's renewal (a dead worker's job is retaken after about this)", num)
    .option(
      '--step-ms <ms>',
      'a training step time (ms) to size the lock from (at least 30 steps long), instead of the step times finished jobs recorded in Redis; pins the lock',
      num,
    )
    .action(async (o) => {
      if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new ConfigError('--concurrency', `must be a positive integer, got ${o.concurrency}`);
      const { runWorker, DEFAULT_LOCK_MS } = await import('../../queue/worker');
      const lockMs = o.lockMs ?? DEFAULT_LOCK_MS;
      if (!Number.isInteger(lockMs) || lockMs < 1000) throw new ConfigError('--lock-ms', `must be an integer >= 1000, got ${o.lockMs}`);
      if (o.stepMs !== undefined && !(o.stepMs > 0)) throw new ConfigError('--step-ms', `must be a positive number of ms, got ${o.stepMs}`);
      await runWorker(o.queue, { concurrency: o.concurrency, lockMs, stepMs: o.stepMs ?? null });
    });
}

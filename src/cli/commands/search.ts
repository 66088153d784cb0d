/**
 * `layertune search`: random or grid search with optional k-fold CV. `--workers n` runs n worker processes, each
 * taking every n-th trial (they share finished trials through the trial files), then summarises once.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { readJobFile, mergeConfig } from '../../config/load';
import { ConfigError } from '../../errors';
import { search, formatSearch } from '../../tune/search';
import { flagsToJob, num, withJobFlags } from '../flags';

const shardArg = (v: string): { index: number; count: number } => {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  if (!m || Number(m[1]) >= Number(m[2])) throw new InvalidArgumentError(`"${v}" is not i/n with i < n`);
  return { index: Number(m[1]), count: Number(m[2]) };
};

function runWorker(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

export function register(program: Command): void {
  withJobFlags(program.command('search').description('hyper-parameter search (log-uniform random or 3x grid), optional stratified k-fold CV'))
    .option('--trials <n>', 'number of trials (grid: the most points allowed)', num)
    .option('--folds <k>', "stratified k-fold cross-validation (1: the job's own split)", num)
    .option('--method <m>', 'random | grid')
    .option('--search-seed <n>', 'seed of the trial draws', num)
    .option('--no-median-stop', 'run every trial to the end')
    .option('--search-config <file>', 'YAML/JSON with the search section (trials, space: {lr: {min, max}, ...}, ...)')
    .option('--workers <n>', 'parallel worker processes', num)
    .option('--shard <i/n>', 'run only trials i, i+n, ... (what each worker runs)', shardArg)
    .option('--queue <url>', 'run the trials on `layertune worker`s through this Redis queue (redis://HOST:PORT/DB)')
    .option('--detach', 'with --queue: return once queued')
    .option('--status', "with --queue: print the queued search's progress")
    .option('--cancel', 'with --queue: remove the queued search (finished records stay)')
    .action(async (o) => {
      const out = o.out ?? 'runs/search';
      const fromFile = o.searchConfig ? readJobFile(o.searchConfig) : {};
      const flags = Object.fromEntries(
        Object.entries({
          trials: o.trials,
          folds: o.folds,
          method: o.method,
          seed: o.searchSeed,
          medianStop: o.medianStop === false ? false : undefined,
        }).filter(([, v]) => v !== undefined),
      );
      const searchCfg = mergeConfig(fromFile, flags);
      const job = flagsToJob(o);
      // trials write nothing of their own; best.yaml trains into <search>/best
      if (job.out === undefined || job.out === out) job.out = path.join(out, 'best');
      if (o.queue) {
        if (o.workers || o.shard) throw new ConfigError('--queue', 'runs the trials on queue workers: drop --workers/--shard');
        // loaded only here: without --queue neither bullmq nor ioredis is ever required
        const { queueSearch } = await import('../../queue/search-queue');
        const action = o.cancel ? 'cancel' : o.status ? 'status' : o.detach ? 'detach' : 'run';
        return queueSearch(job, { configFile: o.config, out, search: searchCfg, url: o.queue, action });
      }
      if (o.detach || o.status || o.cancel) throw new ConfigError(o.detach ? '--detach' : o.status ? '--status' : '--cancel', 'needs --queue');
      const workers = o.workers ?? 1;
      if (!Number.isInteger(workers) || workers < 1) throw new ConfigError('--workers', `must be a positive integer, got ${o.workers}`);
      if (workers > 1 && !o.shard) {
        // each worker is this same command with --shard; the trial files are the only thing they share
        const argv = process.argv.slice(1);
        const codes = await Promise.all(Array.from({ length: workers }, (_, i) => runWorker([...argv, '--workers', '1', '--shard', `${i}/${workers}`])));
        if (codes.some((c) => c !== 0)) throw new ConfigError('--workers', `a worker failed (exit codes ${codes.join(', ')})`);
      }
      const r = await search(job, { configFile: o.config, out, search: searchCfg, shard: o.shard });
      if (!o.shard) for (const line of formatSearch(r)) console.log(line);
    });
}

/** `layertune submit job.yaml … --queue URL`: whole training jobs for `layertune worker`s, resumed on another worker if one dies. */
import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('submit')
    .description('queue job files (what `layertune train --config` runs) for workers; waits for them unless --detach')
    .argument('<jobs...>', 'job files (YAML or JSON)')
    .requiredOption('--queue <url>', 'redis://[user:password@]HOST:PORT/DB')
    .option('--detach', 'return once queued')
    .action(async (files: string[], o) => {
      const { submitJobs } = await import('../../queue/submit');
      await submitJobs(files, { url: o.queue, detach: !!o.detach });
    });
}

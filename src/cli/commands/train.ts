import type { Command } from 'commander';
import { runJob } from '../../job';
import type { JobInput } from '../../config/schema';
import { flagsToJob, withJobFlags } from '../flags';

export function register(program: Command): void {
  withJobFlags(program.command('train').description('fine-tune on an image folder and export the model')).action(async (o) => {
    await runJob(flagsToJob(o) as JobInput, { configFile: o.config });
  });
}

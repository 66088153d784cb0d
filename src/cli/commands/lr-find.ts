/** `layertune lr-find`: the LR range test on the job's data and model; writes lr_find.json and lr_find.png to --out. */
import type { Command } from 'commander';
import { lrFind, formatLrFind } from '../../tune/lr-find';
import { flagsToJob, num, withJobFlags } from '../flags';

export function register(program: Command): void {
  withJobFlags(program.command('lr-find').description("LR range test: sweep every group's rate up together and suggest one"))
    .option('--start <lr>', 'first rate of the sweep (top group, effective)', num)
    .option('--end <lr>', 'last rate of the sweep', num)
    .option('--steps <n>', 'steps of the sweep', num)
    .action(async (o) => {
      const lrFindOpts = Object.fromEntries(Object.entries({ start: o.start, end: o.end, steps: o.steps }).filter(([, v]) => v !== undefined));
      const r = await lrFind(flagsToJob(o), { configFile: o.config, lrFind: lrFindOpts });
      for (const line of formatLrFind(r)) console.log(line);
      if (r.files) console.log(`wrote ${r.files.json} and ${r.files.png}`);
    });
}

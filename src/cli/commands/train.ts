import type { Command } from 'commander';
import { runJob } from '../../job';
import type { JobInput } from '../../config/schema';
import { flagsToJob, num, withJobFlags } from '../flags';
import { lrAuto } from '../../tune/lr-auto';
import { writeReport } from '../../report/report';

export function register(program: Command): void {
  const cmd = withJobFlags(program.command('train').description('fine-tune on an image folder and export the model'))
    .option('--resume <runDir>', 'continue the run in this folder from its latest checkpoint (flags given must not change its config)')
    .option('--force', 'with --resume: continue even though the config changed')
    .option('--no-report', 'skip report.html and the PNG charts');
  // --lr auto: the LR range test picks the rate first (src/tune/lr-auto.ts)
  cmd.options.find((opt) => opt.long === '--lr')!.argParser((v: string) => (v === 'auto' ? 'auto' : num(v)));
  cmd.action(async (o) => {
    let input = flagsToJob({ ...o, lr: o.lr === 'auto' ? undefined : o.lr });
    if (o.lr === 'auto') input = await lrAuto(input, { configFile: o.config, resume: o.resume });
    const r = await runJob(input as JobInput, { configFile: o.config, resume: o.resume, force: Boolean(o.force) });
    if (o.report !== false) {
      const rep = await writeReport(r.job.out);
      console.log(`report: ${rep.html}`);
    }
  });
}

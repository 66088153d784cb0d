import type { Command } from 'commander';
import { runJob } from '../../job';
import type { JobInput } from '../../config/schema';
import { flagsToJob, num, withJobFlags } from '../flags';
import { lrAuto } from '../../tune/lr-auto';
import { wdAutoJob } from '../../tune/wd-auto-job';
import { mergeConfig } from '../../config/load';

export function register(program: Command): void {
  const cmd = withJobFlags(program.command('train').description('fine-tune on an image folder and export the model'))
    .option('--resume <runDir>', 'continue the run in this folder from its latest checkpoint (flags given must not change its config)')
    .option('--force', 'with --resume: continue even though the config changed')
    .option('--no-report', 'skip report.html and the PNG charts')
    .option('--wd <decay>', 'base weight decay, or "auto": λ·Ω(w) = tune.wdAutoFraction (10%) of the start loss', (v: string) =>
      v === 'auto' ? 'auto' : num(v),
    );
  // --lr auto: the LR range test picks the rate first (src/tune/lr-auto.ts)
  cmd.options.find((opt) => opt.long === '--lr')!.argParser((v: string) => (v === 'auto' ? 'auto' : num(v)));
  cmd.action(async (o) => {
    let input = flagsToJob({ ...o, lr: o.lr === 'auto' ? undefined : o.lr });
    if (typeof o.wd === 'number') input = mergeConfig(input, { optimizer: { weightDecay: o.wd } });
    if (o.wd === 'auto') input = await wdAutoJob(input, { configFile: o.config, resume: o.resume });
    if (o.lr === 'auto') input = await lrAuto(input, { configFile: o.config, resume: o.resume });
    await runJob(input as JobInput, { configFile: o.config, resume: o.resume, force: Boolean(o.force), report: o.report !== false, handleSignals: true });
  });
}

/** `train --wd auto`: measure the start loss and Ω(w) on the job, then train with the λ that makes λ·Ω a set fraction of it. */
import { mergeConfig } from '../config/load';
import { ConfigError } from '../errors';
import { prepare, type RunOptions } from '../job';
import { wdAuto } from './rules';
import { disposeNetwork } from './parts';

export async function wdAutoJob(input: Record<string, unknown>, opts: RunOptions = {}): Promise<Record<string, unknown>> {
  if (opts.resume) throw new ConfigError('--wd', '"auto" cannot be combined with --resume: the resumed run keeps its decay');
  const log = opts.log ?? ((s: string) => console.log(s));
  const p = await prepare(input, { ...opts, log: () => undefined });
  try {
    const r = await wdAuto(p, { fraction: p.job.tune.wdAutoFraction });
    for (const line of r.lines) log(line);
    return mergeConfig(input, { optimizer: { weightDecay: r.lambda } });
  } finally {
    disposeNetwork(p.network);
  }
}

/** `train --lr auto`: run the LR range test on the job first, then train at its suggestion. */
import { mergeConfig } from '../config/load';
import { ConfigError, TrainingError } from '../errors';
import type { RunOptions } from '../job';
import { lrFind, formatLrFind } from './lr-find';
import type { LrFindInput } from './schema';

/**
 * Returns `input` with the top group's reference rate (groups.top and lr.base, as `--lr` sets them) replaced by
 * the finder's suggestion; lr_find.json and lr_find.png land in the run folder beside the run's own files.
 * Throws a TrainingError, and nothing is trained, when the finder could not decrease the loss.
 */
export async function lrAuto(input: Record<string, unknown>, opts: RunOptions & { lrFind?: LrFindInput } = {}): Promise<Record<string, unknown>> {
  if (opts.resume) throw new ConfigError('--lr', '"auto" cannot be combined with --resume: the resumed run keeps its rate');
  const log = opts.log ?? ((s: string) => console.log(s));
  const r = await lrFind(input, opts);
  for (const line of formatLrFind(r)) log(line);
  if (r.configLr === null) {
    throw new TrainingError(`--lr auto: the LR range test could not decrease the loss (${r.suggestion.reason}); give --lr explicitly`);
  }
  log(`--lr auto: training with --lr ${r.configLr.toExponential(3)}${r.files ? ` (plot: ${r.files.png})` : ''}`);
  return mergeConfig(input, { groups: { top: r.configLr }, lr: { base: r.configLr } });
}

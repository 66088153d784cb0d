import { ConfigError } from '../errors';
import type { Job } from './schema';

/**
 * Options the schema already validates (so job files can be written against the final names and checked) but that
 * the training loop does not apply yet. Accepting them silently would train something other than what the job
 * says, so each is refused by name until its stage lands; a default value passes, so existing jobs are unaffected.
 */
export function refuseNotYetApplied(job: Job, prefix = 'config'): void {
  const at = (field: string) => `${prefix}.${field}`;
  const refuse = (field: string) => {
    throw new ConfigError(at(field), 'is validated but not applied by this version of layertune yet; remove it to train');
  };
  // fastai's fine_tune is a two-phase run (head-only, then unfrozen), which the trainer does not run yet
  if (job.recipe === 'fastai') refuse('recipe');
}

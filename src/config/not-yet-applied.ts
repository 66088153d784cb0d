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
  if (job.ema !== undefined) refuse('ema');
}

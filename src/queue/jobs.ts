/** What the queue carries: one shape per job name, shared by the submitters and the sandboxed processor. */
import type { TrialRecord } from '../tune/search';

export interface TrialJobData {
  url: string;
  searchId: string;
  /** The search folder on storage every worker reaches (trials/*.json are written there too). */
  out: string;
  /** The base job and search settings, exactly as the submitter planned them (re-planned, not trusted, by the worker). */
  base: Record<string, unknown>;
  search: Record<string, unknown>;
  trialId: number;
  key: string;
}

export interface SearchJobData extends Omit<TrialJobData, 'trialId' | 'key'> {
  total: number;
}

export interface RunJobData {
  /** The job config, with its out/export resolved to the shared storage the ArtifactStore names. */
  job: Record<string, unknown>;
}

export interface SearchSummary {
  searchId: string;
  trials: number;
  ranking: number[];
  best: TrialRecord | null;
  files: Record<string, string>;
}

export const JOB = { trial: 'trial', search: 'search', run: 'run' } as const;

/**
 * What the sandboxed child hands its worker: the job's return value, and the median optimizer-step time (ms) it
 * measured while training (null for a summary or a reused record). The worker records the step time and passes
 * only `result` on to BullMQ, so a job's return value is the same as without the measurement.
 */
export interface ChildResult<T = unknown> {
  result: T;
  stepMs: number | null;
}

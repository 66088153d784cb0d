/** `train --resume RUN_DIR`: which checkpoint, which job, and the refusal when the job changed. */
import * as path from 'node:path';
import { ConfigError } from '../../errors';
import { mergeConfig, readJobFile, resolveJob } from '../../config/load';
import type { Job } from '../../config/schema';
import { latestCheckpoint, peekCheckpoint } from './store';
import { diffConfig, formatChanges, type ConfigChange } from '../../config/diff';
import type { RunProvenance } from './provenance';

export interface ResumePlan {
  /** The checkpoint folder to load. */
  dir: string;
  /** The job input to run: the checkpoint's, with the given file and flags on top. */
  input: Record<string, unknown>;
  job: Job;
  /** Fields the file/flags changed (empty unless forced). */
  changes: ConfigChange[];
  epoch: number;
  step: number;
  /** What the checkpoint was trained on; null for checkpoints older than the record. */
  provenance: RunProvenance | null;
}

const plain = (x: unknown) => JSON.parse(JSON.stringify(x)) as Record<string, unknown>;

/**
 * The run folder's latest checkpoint and the job to continue it with. Flags and a config file given with
 * --resume override the saved job field by field; any resulting change to the resolved job is refused (naming
 * every changed field) unless `force`, because the continued run would then not be the run that was started.
 * The run folder is the one given here (runs may be moved); `out` pointing elsewhere is refused.
 */
export function planResume(runDir: string, overrides: Record<string, unknown>, configFile: string | undefined, force: boolean): ResumePlan {
  const dir = latestCheckpoint(runDir);
  const saved = peekCheckpoint(dir);
  const over = mergeConfig(configFile ? readJobFile(configFile) : {}, overrides);
  if (over.out !== undefined && path.resolve(String(over.out)) !== path.resolve(runDir)) {
    throw new ConfigError('out', `a resumed run stays in its folder ${runDir}; leave out --out (got ${String(over.out)})`);
  }
  const savedInput = { ...saved.input, out: runDir, ...absoluteData(saved.input, saved.provenance?.data.dir) };
  const before = resolveJob(savedInput);
  const input = mergeConfig(savedInput, { ...over, out: runDir, ...absoluteData(over) });
  const job = resolveJob(input);
  const changes = diffConfig(plain(before), plain(job));
  if (changes.length && !force) {
    throw new ConfigError(
      'resume',
      `the config differs from the checkpoint's (${formatChanges(changes)}); the continued run would not be the same run — pass --force to resume with the new values anyway`,
    );
  }
  return { dir, input, job, changes, epoch: saved.trainer.epoch, step: saved.trainer.step, provenance: saved.provenance };
}

/**
 * `data.dir` as an absolute path: the recorded one for the saved job (a relative `data.dir` would otherwise be
 * looked up again from wherever the resume is started, and a same-named folder there used silently), the given one
 * resolved against the working directory for an override. Empty when there is nothing to set.
 */
function absoluteData(input: Record<string, unknown>, recorded?: string): Record<string, unknown> {
  const data = (input.data ?? {}) as Record<string, unknown>;
  const dir = recorded ?? (typeof data.dir === 'string' ? path.resolve(data.dir) : undefined);
  return dir === undefined ? {} : { data: { ...data, dir } };
}

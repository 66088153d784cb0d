/**
 * Checkpoint folders on disk: written atomically, named, verified, found again.
 *
 *   <run>/checkpoints/last/        after every epoch (what `train --resume` reads)
 *   <run>/checkpoints/best/        when the monitored metric improves
 *   <run>/checkpoints/epoch-0004/  every N epochs (1-based epoch number)
 *
 * A crash leaves the previous folder or the new one, never a mixture; checksums are checked before a folder is
 * trusted, and a corrupt `last` names the other checkpoints of the run that still verify (often `best`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, DataError } from '../../errors';
import { recoverFolder, replaceFolderAtomic } from '../../export/atomic';
import { verifyChecksums } from '../../io/checksum';
import { writeFileDurable } from '../../io/write';
import {
  decodeCheckpoint,
  describeState,
  encodeCheckpoint,
  OPTIMIZER_FILE,
  parseState,
  STATE_FILE,
  WEIGHTS_FILE,
  type Checkpoint,
  type CheckpointSummary,
  type StateFile,
} from './format';

/** Writes a checkpoint folder atomically: a crash leaves the previous checkpoint or the new one, never a mixture. */
export async function saveCheckpoint(dir: string, ck: Checkpoint): Promise<void> {
  const files = encodeCheckpoint(ck);
  await replaceFolderAtomic(dir, (tmp) => {
    for (const [name, data] of files) writeFileDurable(path.join(tmp, name), data);
  });
}

function readState(dir: string): StateFile {
  const file = path.join(dir, STATE_FILE);
  verifyCheckpoint(dir, [STATE_FILE]);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('resume', `${file}: cannot read checkpoint state (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseState(text, file);
}

/** Just the job and the position of a checkpoint, without reading the binaries. */
export function peekCheckpoint(dir: string): CheckpointSummary {
  return describeState(readState(dir), path.join(dir, STATE_FILE));
}

export function loadCheckpoint(dir: string): Checkpoint {
  verifyCheckpoint(dir);
  const s = readState(dir);
  const bytes = { [WEIGHTS_FILE]: fs.readFileSync(path.join(dir, WEIGHTS_FILE)), [OPTIMIZER_FILE]: fs.readFileSync(path.join(dir, OPTIMIZER_FILE)) };
  return decodeCheckpoint(s, bytes, dir);
}

export function checkpointsDir(runDir: string): string {
  return path.join(runDir, 'checkpoints');
}

export function epochCheckpointName(epochsDone: number): string {
  return `epoch-${String(epochsDone).padStart(4, '0')}`;
}

/**
 * The checkpoint to resume from: the complete one (state.json present) furthest into the run; `last` wins ties.
 * Throws a ConfigError naming the folder when there is none.
 */
export function latestCheckpoint(runDir: string): string {
  checkRunFolderKind(runDir);
  const root = checkpointsDir(runDir);
  let names: string[] = [];
  try {
    // a kill between replaceFolderAtomic's two renames leaves `.NAME.old`: put it back first
    for (const n of fs.readdirSync(root)) {
      const m = /^\.(.+)\.old$/.exec(n);
      if (m) recoverFolder(path.join(root, m[1]));
    }
    names = fs.readdirSync(root).filter((n) => !n.startsWith('.'));
  } catch {
    // handled below
  }
  let best: { dir: string; step: number } | null = null;
  for (const n of ['last', ...names.filter((x) => x !== 'last')]) {
    const dir = path.join(root, n);
    if (!fs.existsSync(path.join(dir, 'state.json'))) continue;
    let step: number;
    try {
      step = peekCheckpoint(dir).trainer.step;
    } catch (e) {
      // a damaged checkpoint is said out loud, with the intact ones named, never skipped for an older one
      if (e instanceof CorruptCheckpointError) throw e;
      continue;
    }
    if (!best || step > best.step) best = { dir, step };
  }
  if (!best) throw new ConfigError('resume', `${runDir}: no checkpoint to resume from (expected ${path.join(root, 'last', 'state.json')})`);
  return best.dir;
}

/** `--resume` names a run folder: a file, or one checkpoint folder inside a run, gets one line saying which to pass. */
function checkRunFolderKind(runDir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(runDir);
  } catch {
    throw new ConfigError('resume', `${runDir}: no such run folder`);
  }
  if (!st.isDirectory()) throw new ConfigError('resume', `${runDir} is a file, not a run folder (pass the --out folder of the run)`);
  const parent = path.dirname(path.resolve(runDir));
  if (fs.existsSync(path.join(runDir, 'state.json')) && path.basename(parent) === 'checkpoints') {
    throw new ConfigError(
      'resume',
      `${runDir} is one checkpoint of a run; pass the run folder ${path.dirname(parent)} (it resumes from its latest checkpoint)`,
    );
  }
}

/** Sibling checkpoint folders of `dir` that are complete and verify. */
function intactSiblings(dir: string): string[] {
  const root = path.dirname(dir);
  let names: string[] = [];
  try {
    names = fs.readdirSync(root).filter((n) => !n.startsWith('.') && path.join(root, n) !== dir);
  } catch {
    return [];
  }
  return names
    .map((n) => path.join(root, n))
    .filter((d) => {
      if (!fs.existsSync(path.join(d, 'state.json'))) return false;
      try {
        verifyChecksums(d);
        return true;
      } catch {
        return false;
      }
    });
}

/** A checkpoint whose files do not match their checksums: resume must stop here, not fall back silently. */
export class CorruptCheckpointError extends ConfigError {}

/** Throws a one-line ConfigError under `resume` naming the bad file and any intact checkpoint beside it. */
export function verifyCheckpoint(dir: string, only?: readonly string[]): void {
  try {
    verifyChecksums(dir, only);
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    const ok = intactSiblings(dir);
    throw new CorruptCheckpointError(
      'resume',
      `${e.message}; ${ok.length ? `intact: ${ok.join(', ')} (copy it over ${dir} to resume from it)` : 'no other checkpoint of this run is intact'}`,
    );
  }
}

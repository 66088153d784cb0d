import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';

/** Written into every run folder layertune creates, so a later run can tell its own folders from the user's. */
export const MARKER = '.layertune';

/** Files only a layertune run holds: run folders from before the marker existed are still recognised. */
const RUN_FILES = ['checkpoints', 'metrics.jsonl', 'summary.json', 'report.html'];

/** An export is recognised by its metadata.json naming a layertune version; the export folder itself stays a plain tfjs model. */
function isOurExport(dir: string): boolean {
  try {
    return typeof JSON.parse(fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8')).layertuneVersion === 'string';
  } catch {
    return false;
  }
}

export type FolderKind = 'out' | 'export';

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Refuses, before anything is written, a folder that exists and is not layertune's: an export replaces
 * its folder whole, so `--export photos` would otherwise delete the photos. `force` is the only way past.
 */
export function checkOwnFolder(dir: string, kind: FolderKind, opts: { force?: boolean; dataDir?: string } = {}): void {
  const flag = kind === 'out' ? '--out' : '--export';
  // an output folder inside the data folder would be scanned as a class by the next run
  if (opts.dataDir && isInside(path.resolve(dir), path.resolve(opts.dataDir))) {
    throw new DataError(dir, `${flag} folder is inside the data folder ${opts.dataDir}; choose a folder outside it`);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return; // does not exist yet: nothing of the user's to lose
  }
  if (!st.isDirectory()) throw new DataError(dir, `${flag} is a file, not a folder`);
  const entries = fs.readdirSync(dir);
  if (entries.length === 0 || entries.includes(MARKER)) return;
  if (kind === 'out' ? RUN_FILES.some((f) => entries.includes(f)) : isOurExport(dir)) return;
  if (opts.force) return;
  throw new DataError(
    dir,
    `${flag} folder exists and was not written by layertune (${entries.length} entries); choose another folder or pass --force to replace it`,
  );
}

/** Marks `dir` as layertune's own. */
export function markFolder(dir: string): void {
  fs.writeFileSync(path.join(dir, MARKER), 'written by layertune; a later run may replace this folder\n');
}

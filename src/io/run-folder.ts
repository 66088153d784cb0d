import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';

/** Written into every folder layertune creates, so a later run can tell its own folders from the user's. */
export const MARKER = '.layertune';

/** Files only a layertune run or export holds: folders from before the marker existed are still recognised. */
const OWN_FILES: Record<FolderKind, string[]> = {
  out: ['checkpoints', 'metrics.jsonl', 'summary.json', 'report.html'],
  export: ['metadata.json'],
};

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
  if (opts.dataDir && kind === 'export' && isInside(path.resolve(dir), path.resolve(opts.dataDir))) {
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
  if (entries.length === 0 || entries.includes(MARKER) || OWN_FILES[kind].some((f) => entries.includes(f))) return;
  if (opts.force) return;
  throw new DataError(dir, `${flag} folder exists and was not written by layertune (${entries.length} entries); choose another folder or pass --force to replace it`);
}

/** Marks `dir` as layertune's own. */
export function markFolder(dir: string): void {
  fs.writeFileSync(path.join(dir, MARKER), 'written by layertune; a later run may replace this folder\n');
}

/**
 * Checksums of a checkpoint folder, checked before it is trusted, with the way out in the same line: a corrupt
 * `checkpoints/last` names the other checkpoints of the run that still verify (often `checkpoints/best`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, DataError } from '../errors';
import { verifyChecksums } from '../io/checksum';

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

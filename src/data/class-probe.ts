/**
 * Before the first step: every class must have at least one training image that decodes. A class whose files
 * are all corrupt (or were deleted between the scan and training) would otherwise be exported as a label the
 * model never saw a single example of.
 */
import * as path from 'node:path';
import { DataError } from '../errors';
import { recordSkipped, type DataSource } from './source';

/** Files named in the refusal before the rest is counted, so a large broken class stays one line. */
const MAX_NAMED = 3;

/**
 * Decodes each class's training images in order until one succeeds (usually the first, so a healthy set costs one
 * decode per class, which the source's cache keeps). Failures are recorded in `source.skipped`, as training
 * would record them. Throws a one-line DataError naming the class folder and its files when none decodes.
 */
export async function checkEveryClassDecodes(source: DataSource, size: number): Promise<void> {
  const known = new Set(source.skipped.map((s) => s.file));
  for (let label = 0; label < source.classes.length; label++) {
    const mine = source.train.filter((e) => e.label === label);
    const failed: string[] = [];
    let ok = false;
    for (const ex of mine) {
      if (known.has(ex.key)) {
        failed.push(source.skipped.find((s) => s.file === ex.key)!.reason);
        continue;
      }
      try {
        await source.pixels(ex, size);
        ok = true;
        break;
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
        recordSkipped(source, ex.key, e.message);
        known.add(ex.key);
        failed.push(e.message);
      }
    }
    if (ok) continue;
    const name = source.classes[label];
    // image-folder keys are file paths; other sources' keys name no folder
    const folder = mine.length && path.dirname(mine[0].key) !== '.' ? path.dirname(mine[0].key) : `class ${JSON.stringify(name)}`;
    const named = failed.slice(0, MAX_NAMED).join('; ');
    const more = failed.length > MAX_NAMED ? `; and ${failed.length - MAX_NAMED} more` : '';
    throw new DataError(
      folder,
      mine.length
        ? `class ${JSON.stringify(name)} has no decodable training image (${named}${more}); fix or remove its files, or remove the class`
        : `class ${JSON.stringify(name)} has no training images`,
    );
  }
}

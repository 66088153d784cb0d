import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';

/** Writes a file by writing a sibling temporary and renaming it over the target (atomic on POSIX). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** Fails early, before any training, when `dir` cannot be created or written. */
export function ensureWritableDir(dir: string, field = 'out'): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
    const probe = path.join(dir, `.write-test-${process.pid}`);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new DataError(dir, `${field} folder is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Replaces folder `target` with the contents produced by `fill` so that a crash at any point leaves
 * either the previous folder or the new one, never a mixture: the new folder is written whole under
 * a temporary name, the old one is moved aside, the new one renamed into place, the old removed.
 * If a crash falls between the two renames, `recoverFolder` puts the previous one back.
 */
export async function replaceFolderAtomic(target: string, fill: (tmpDir: string) => Promise<void> | void): Promise<void> {
  const parent = path.dirname(path.resolve(target));
  fs.mkdirSync(parent, { recursive: true });
  recoverFolder(target);
  const base = path.basename(target);
  const tmp = fs.mkdtempSync(path.join(parent, `.${base}.tmp-`));
  try {
    await fill(tmp);
    for (const f of fs.readdirSync(tmp)) {
      const fd = fs.openSync(path.join(tmp, f), 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = path.join(parent, `.${base}.old`);
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(target)) fs.renameSync(target, old);
  fs.renameSync(tmp, target);
  fs.rmSync(old, { recursive: true, force: true });
}

/** Restores `target` from its `.old` copy when a previous replace died between its two renames. */
export function recoverFolder(target: string): void {
  const old = path.join(path.dirname(path.resolve(target)), `.${path.basename(target)}.old`);
  if (!fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';
import { writeChecksums } from '../io/checksum';
import { asDiskError, DiskError, fsyncDir } from '../io/write';

// writes live in io/write.ts; re-exported for the callers that have always imported it from here
export { writeFileAtomic } from '../io/write';

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
  // mkdir, not mkdtemp: mkdtemp forces mode 0700, and an export must be readable by whoever the umask allows
  const tmp = path.join(parent, `.${base}.tmp-${process.pid}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`);
  try {
    fs.mkdirSync(tmp);
    await fill(tmp);
    // every folder written here is read back by layertune, which verifies these
    writeChecksums(tmp);
    for (const f of fs.readdirSync(tmp)) {
      const fd = fs.openSync(path.join(tmp, f), 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    fsyncDir(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    // name the file where the user will look for it, not inside the temporary folder that is now gone
    throw asDiskError(e instanceof DiskError ? new DiskError(path.join(target, path.basename(e.file)), e.code) : e, target);
  }
  const old = path.join(parent, `.${base}.old`);
  try {
    fs.rmSync(old, { recursive: true, force: true });
    if (fs.existsSync(target)) fs.renameSync(target, old);
    fs.renameSync(tmp, target);
  } catch (e) {
    // the new folder never replaced the old one: put the old one back and drop the new
    recoverFolder(target);
    fs.rmSync(tmp, { recursive: true, force: true });
    throw asDiskError(e, target);
  }
  fsyncDir(parent);
  fs.rmSync(old, { recursive: true, force: true });
}

/** Restores `target` from its `.old` copy when a previous replace died between its two renames. */
export function recoverFolder(target: string): void {
  const old = path.join(path.dirname(path.resolve(target)), `.${path.basename(target)}.old`);
  if (!fs.existsSync(target) && fs.existsSync(old)) fs.renameSync(old, target);
}

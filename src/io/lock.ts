import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataError } from '../errors';

export const LOCK_FILE = '.layertune.lock';

interface Holder {
  pid: number;
  hostname: string;
  startedAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the run folder's lock so two processes never write one folder (interleaved metrics.jsonl, one
 * run's results lost). A lock whose process is gone is taken over with a warning. Returns the release.
 */
export function acquireLock(dir: string, warn: (s: string) => void): () => void {
  const file = path.join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.off('exit', release);
        try {
          if ((JSON.parse(fs.readFileSync(file, 'utf8')) as Holder).pid === me.pid) fs.rmSync(file);
        } catch {
          // already gone: nothing to release
        }
      };
      // also on a signal: the signal handlers end the process through exit
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: Holder | null = null;
    try {
      holder = JSON.parse(fs.readFileSync(file, 'utf8')) as Holder;
    } catch {
      holder = null; // unreadable or half-written: treated as stale
    }
    // another host's PID cannot be checked from here, so its lock is respected
    if (holder && (holder.hostname !== me.hostname || alive(holder.pid))) {
      throw new DataError(
        dir,
        `run folder is in use by PID ${holder.pid} on ${holder.hostname} (since ${holder.startedAt}); wait for it or choose another --out`,
      );
    }
    warn(`warning: ${file}: taking over a stale lock${holder ? ` of PID ${holder.pid} (no longer running)` : ''}`);
    fs.rmSync(file, { force: true });
  }
  throw new DataError(dir, 'could not take the run folder lock');
}

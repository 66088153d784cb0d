import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';

/** What a path is, in the words an error line uses. */
export function kindName(st: fs.Stats): string {
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Why `p` cannot be read as `what` (e.g. "job file"), or null when it is a regular file or missing (each caller
 * words "missing" itself). stat follows symlinks, and stat never opens: a FIFO is found without blocking on it and
 * a device (/dev/zero) without reading from it.
 */
export function notRegularFile(p: string, what: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return null;
  }
  return st.isFile() ? null : `is ${kindName(st)}, not a ${what} (a regular file was expected)`;
}

/** Bytes as a readable name: printable ASCII kept, everything else as \xNN, so the line names what `ls` shows. */
export function escapeName(name: Buffer): string {
  let out = '';
  for (const b of name) out += b >= 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Refuses a folder holding a name that is not valid UTF-8. Node's string paths turn such bytes into U+FFFD, so the
 * name read back would name a file that does not exist; one line naming it (hex-escaped) replaces an ENOENT later.
 * The byte listing is read only when a string name holds U+FFFD, so a clean folder costs nothing extra.
 */
export function refuseInvalidUtf8Names(dir: string, names: readonly string[]): void {
  if (!names.some((n) => n.includes('\uFFFD'))) return;
  for (const raw of fs.readdirSync(dir, { encoding: 'buffer' })) {
    try {
      strictUtf8.decode(raw);
    } catch {
      throw new DataError(path.join(dir, escapeName(raw)), 'name is not valid UTF-8; rename it (for example with convmv) so it can be read');
    }
  }
}

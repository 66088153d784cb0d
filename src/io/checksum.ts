/**
 * SHA-256 of every file in a folder layertune writes (checkpoints, exports, downloaded models), kept next to them in
 * `checksums.sha256` in the format of `sha256sum`, so `sha256sum -c checksums.sha256` checks a folder without
 * layertune. Reads verify it: a bit flip or a truncation is refused with one line that names the file, instead of
 * loading garbage weights or failing deep inside a parser.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';
import { writeFileDurable } from './write';

export const CHECKSUM_FILE = 'checksums.sha256';

export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    // in slices: checkpoints can be larger than one Buffer should be
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n: number; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Hashes every regular file directly in `dir` and writes the list. Call once the folder is otherwise complete. */
export function writeChecksums(dir: string): void {
  const names = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== CHECKSUM_FILE)
    .map((e) => e.name)
    .sort();
  writeFileDurable(path.join(dir, CHECKSUM_FILE), names.map((n) => `${sha256File(path.join(dir, n))}  ${n}\n`).join(''));
}

function readList(dir: string): Map<string, string> | null {
  const file = path.join(dir, CHECKSUM_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    // folders written before checksums existed have none: they are read as before
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DataError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const list = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (!m) throw new DataError(file, 'is corrupt (a line is not "<sha256>  <name>")');
    list.set(m[2], m[1]);
  }
  return list;
}

/**
 * Throws a DataError naming the first file in `dir` that is missing or whose content differs from its recorded
 * SHA-256. `only` limits the check to some files (a peek at a checkpoint's state.json need not hash its weights).
 * A folder without a checksum list passes.
 */
export function verifyChecksums(dir: string, only?: readonly string[]): void {
  const list = readList(dir);
  if (!list) return;
  for (const [name, want] of list) {
    if (only && !only.includes(name)) continue;
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) throw new DataError(file, `is missing (listed in ${CHECKSUM_FILE})`);
    const got = sha256File(file);
    if (got !== want) throw new DataError(file, `is corrupt or truncated: its SHA-256 is ${got.slice(0, 12)}…, ${CHECKSUM_FILE} records ${want.slice(0, 12)}…`);
  }
}

/**
 * The one place layertune's files reach the disk. `writeSync` may write fewer bytes than asked (a nearly full
 * disk, a signal, some network file systems) and Node does not retry for us, so every write loops here; and a
 * full, read-only or forbidden disk becomes a DiskError, one line that names the file, instead of a stack trace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';

type WriteSync = (fd: number, buf: Uint8Array, offset: number, length: number) => number;

const realWrite: WriteSync = (fd, buf, offset, length) => fs.writeSync(fd, buf, offset, length);
let writeImpl: WriteSync = realWrite;

/**
 * Tests replace the system call to simulate short writes and ENOSPC without filling a disk; call with no argument
 * to put the real one back.
 */
export function setWriteSyncForTest(fn?: WriteSync): void {
  writeImpl = fn ?? realWrite;
}

/** Error codes that mean "the disk refused", as opposed to a bug. */
const DISK_REASONS: Record<string, string> = {
  ENOSPC: 'disk full',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EFBIG: 'file too large for this file system',
};

/** A write the disk refused. The message says what was being written and that what was there before is intact. */
export class DiskError extends UserError {
  constructor(
    public readonly file: string,
    public readonly code: string,
  ) {
    super(
      `${DISK_REASONS[code] ?? code} writing ${file} (${code}): everything written before was kept; free space (or fix permissions) and rerun, with --resume to continue a training run`,
    );
  }
}

/** `e` as a DiskError naming `file` when the disk refused; any other error unchanged. */
export function asDiskError(e: unknown, file: string): unknown {
  if (e instanceof DiskError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  return code && code in DISK_REASONS ? new DiskError(file, code) : e;
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** Writes every byte of `data` at the file's current position, however many calls that takes. */
export function writeAll(fd: number, data: string | Uint8Array): void {
  const buf = toBytes(data);
  let done = 0;
  while (done < buf.byteLength) {
    const n = writeImpl(fd, buf, done, buf.byteLength - done);
    // zero bytes with no error would loop forever; the kernel only does this when it cannot make progress
    if (n <= 0) throw Object.assign(new Error(`write returned ${n}`), { code: 'ENOSPC' });
    done += n;
  }
}

/** Flushes a folder's entries (a rename or a new file) to the disk; some file systems refuse, which is harmless. */
export function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // not every platform can open or fsync a folder (Windows); the data itself was fsynced
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Creates or truncates `file`, writes all of `data` and fsyncs it. Not atomic: for files inside a temporary folder. */
export function writeFileDurable(file: string, data: string | Uint8Array): void {
  try {
    // mode 0o666 minus the umask, as for any file a program creates: the user decides who can read it
    const fd = fs.openSync(file, 'w', 0o666);
    try {
      writeAll(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw asDiskError(e, file);
  }
}

/**
 * Replaces `file` with `data` atomically: a sibling temporary is written whole and fsynced, renamed over the target,
 * and the folder fsynced so the rename survives a power cut. On any failure the temporary is removed and the
 * previous file is untouched.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileDurable(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw asDiskError(e instanceof DiskError ? new DiskError(file, e.code) : e, file);
  }
  fsyncDir(path.dirname(path.resolve(file)));
}

/**
 * An append-only file that only ever holds whole records: a record the disk could not take completely is cut off
 * again, so a full disk never leaves half a JSON line for readers to trip on.
 */
export class AppendFile {
  private fd: number;
  private size: number;
  constructor(
    readonly file: string,
    append: boolean,
  ) {
    try {
      if (!append) fs.closeSync(fs.openSync(file, 'w', 0o666));
      // always O_APPEND: after a cut-back ftruncate the next record lands at the new end, not after a hole
      this.fd = fs.openSync(file, 'a', 0o666);
      this.size = fs.fstatSync(this.fd).size;
    } catch (e) {
      throw asDiskError(e, file);
    }
  }
  write(record: string): void {
    const bytes = toBytes(record);
    try {
      writeAll(this.fd, bytes);
      this.size += bytes.byteLength;
    } catch (e) {
      try {
        fs.ftruncateSync(this.fd, this.size);
      } catch {
        // the truncate is best effort; the error below is what matters
      }
      throw asDiskError(e, this.file);
    }
  }
  close(): void {
    try {
      fs.fsyncSync(this.fd);
    } catch {
      // a failed fsync at close loses nothing already reported; the records were written
    }
    fs.closeSync(this.fd);
  }
}

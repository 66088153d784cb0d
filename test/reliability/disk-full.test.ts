/**
 * Full, read-only and short-writing disks (issue 13, item 4): the write seam in src/io/write.ts stands in for the
 * system call, so these run anywhere; the report of issue 13 has the same run on a real 3 MB tmpfs.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/images';
import { replaceFolderAtomic } from '../../src/export/atomic';
import { AppendFile, DiskError, setWriteSyncForTest, writeFileAtomic, writeFileDurable } from '../../src/io/write';
import { UserError } from '../../src/errors';

const real = (fd: number, b: Uint8Array, o: number, n: number) => fs.writeSync(fd, b, o, n);

/** A disk that takes at most `chunk` bytes per call and `budget` bytes in all, then says ENOSPC. */
function disk(budget: number, chunk = Infinity) {
  let left = budget;
  return (fd: number, b: Uint8Array, o: number, n: number) => {
    if (left <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const k = Math.min(n, chunk, left);
    left -= k;
    return real(fd, b, o, k);
  };
}

describe('reliability: full and short-writing disks', () => {
  afterEach(() => setWriteSyncForTest());

  it('loops on short writes: a file written 7 bytes per call is whole', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'm.jsonl');
    const text = `${Array.from({ length: 72 }, (_, i) => JSON.stringify({ step: i, loss: 1 / (i + 1) })).join('\n')}\n`;
    setWriteSyncForTest(disk(Infinity, 7));
    writeFileAtomic(f, text);
    expect(fs.readFileSync(f, 'utf8')).to.equal(text);
  });

  it('ENOSPC in writeFileAtomic: one-line DiskError naming the file, the previous file intact, no temporary left', () => {
    const dir = tmpDir();
    const f = path.join(dir, 'metrics.jsonl');
    fs.writeFileSync(f, 'old\n');
    setWriteSyncForTest(disk(10));
    let err: unknown;
    try {
      writeFileAtomic(f, 'x'.repeat(1000));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(DiskError).and.instanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).to.match(/^disk full writing .*metrics\.jsonl \(ENOSPC\)/);
    expect(msg).to.not.include('\n');
    expect(fs.readFileSync(f, 'utf8')).to.equal('old\n');
    expect(fs.readdirSync(dir)).to.deep.equal(['metrics.jsonl']);
  });

  it('ENOSPC while filling a folder (a checkpoint or an export): the previous folder is intact and the error names the target', async () => {
    const root = tmpDir();
    const target = path.join(root, 'checkpoints', 'last');
    await replaceFolderAtomic(target, (tmp) => writeFileDurable(path.join(tmp, 'weights.bin'), Buffer.alloc(100, 1)));
    setWriteSyncForTest(disk(50));
    let err: unknown;
    try {
      await replaceFolderAtomic(target, (tmp) => {
        writeFileDurable(path.join(tmp, 'weights.bin'), Buffer.alloc(100, 2));
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(DiskError);
    expect((err as Error).message).to.include(path.join(target, 'weights.bin'));
    expect(fs.readFileSync(path.join(target, 'weights.bin'))).to.deep.equal(Buffer.alloc(100, 1));
    expect(fs.readdirSync(path.dirname(target))).to.deep.equal(['last']);
  });

  it('EDQUOT, EROFS and EACCES get their own words', () => {
    for (const [code, words] of [
      ['EDQUOT', 'disk quota exceeded'],
      ['EROFS', 'read-only file system'],
      ['EACCES', 'permission denied'],
    ]) {
      setWriteSyncForTest(() => {
        throw Object.assign(new Error(code), { code });
      });
      const f = path.join(tmpDir(), 'a');
      expect(() => writeFileAtomic(f, 'x')).to.throw(DiskError, new RegExp(`^${words} writing .*\\(${code}\\)`));
    }
  });

  it('an append that the disk cuts short is cut back: metrics.jsonl only ever holds whole lines', () => {
    const f = path.join(tmpDir(), 'metrics.jsonl');
    const out = new AppendFile(f, false);
    out.write('{"step":0}\n');
    setWriteSyncForTest(disk(5));
    expect(() => out.write('{"step":1,"loss":0.5}\n')).to.throw(DiskError, /metrics\.jsonl/);
    setWriteSyncForTest();
    out.write('{"step":2}\n');
    out.close();
    expect(fs.readFileSync(f, 'utf8')).to.equal('{"step":0}\n{"step":2}\n');
  });

  it('other errors are not dressed up as disk errors', () => {
    setWriteSyncForTest(() => {
      throw Object.assign(new Error('boom'), { code: 'EBADF' });
    });
    expect(() => writeFileAtomic(path.join(tmpDir(), 'a'), 'x'))
      .to.throw(/boom/)
      .and.not.be.instanceOf(DiskError);
  });
});

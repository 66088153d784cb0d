/**
 * Permissions follow the umask (issue 13, item 11): exports and checkpoints were mode 0700 because mkdtemp forces
 * it, so another user or a web server could not read them. Nothing is chmod-ed: the user's umask decides.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/images';
import { replaceFolderAtomic } from '../../src/export/atomic';
import { saveCheckpoint } from '../../src/train/checkpoint/store';
import type { Checkpoint } from '../../src/train/checkpoint/format';
import { writeFileAtomic, writeFileDurable } from '../../src/io/write';
import { tinyCheckpoint } from '../helpers/checkpoint';

const ck: Checkpoint = tinyCheckpoint({ step: 0, weights: [], optimizer: { algorithm: 'sgd', step: 0, vars: {} } });

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('reliability: permissions follow the umask', () => {
  let saved: number;
  beforeEach(() => (saved = process.umask()));
  afterEach(() => process.umask(saved));

  for (const [umask, dirMode, fileMode] of [
    [0o022, 0o755, 0o644],
    [0o002, 0o775, 0o664],
    [0o077, 0o700, 0o600],
  ]) {
    it(`umask ${umask.toString(8).padStart(3, '0')}: folders ${dirMode.toString(8)}, files ${fileMode.toString(8)}`, async () => {
      process.umask(umask);
      const root = tmpDir();
      const exp = path.join(root, 'model');
      await replaceFolderAtomic(exp, (tmp) => writeFileDurable(path.join(tmp, 'model.json'), '{}'));
      const last = path.join(root, 'checkpoints', 'last');
      await saveCheckpoint(last, ck);
      writeFileAtomic(path.join(root, 'metrics.jsonl'), '');
      expect(mode(exp)).to.equal(dirMode);
      expect(mode(last)).to.equal(dirMode);
      for (const f of [
        path.join(exp, 'model.json'),
        path.join(exp, 'checksums.sha256'),
        path.join(last, 'weights.bin'),
        path.join(last, 'state.json'),
        path.join(root, 'metrics.jsonl'),
      ]) {
        expect(mode(f), f).to.equal(fileMode);
      }
    });
  }
});

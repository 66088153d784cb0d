/**
 * Checksums on checkpoints and exports (issue 13, item 4): written with every folder, verified on every read; a
 * flipped byte or a truncation gets one line that names the file and, for a checkpoint, the intact one beside it.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tmpDir } from '../helpers/images';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint/store';
import type { Checkpoint } from '../../src/train/checkpoint/format';
import { CHECKSUM_FILE, sha256File } from '../../src/io/checksum';
import { replaceFolderAtomic } from '../../src/export/atomic';
import { loadExport } from '../../src/export/exporter';
import { writeModelArtifacts } from '../../src/models/io';
import { UserError } from '../../src/errors';
import { tinyCheckpoint } from '../helpers/checkpoint';

function checkpoint(): Checkpoint {
  return tinyCheckpoint({
    weights: [{ name: 'w', shape: [4], dtype: 'float32', values: new Float32Array([1, 2, 3, 4]) }],
    optimizer: {
      algorithm: 'momentum',
      step: 3,
      vars: { w: { step: 3, slots: { momentum: { shape: [4], values: new Float32Array([0.1, 0.2, 0.3, 0.4]) } } } },
    },
  });
}

function flipByte(file: string, at = 0): void {
  const b = fs.readFileSync(file);
  b[at] ^= 0xff;
  fs.writeFileSync(file, b);
}

describe('reliability: checksums', () => {
  it('every checkpoint file is listed in checksums.sha256, in sha256sum format', async () => {
    const dir = path.join(tmpDir(), 'checkpoints', 'last');
    await saveCheckpoint(dir, checkpoint());
    const lines = fs.readFileSync(path.join(dir, CHECKSUM_FILE), 'utf8').trim().split('\n');
    expect(lines.map((l) => l.split('  ')[1])).to.deep.equal(['optimizer.bin', 'state.json', 'weights.bin']);
    for (const l of lines) expect(l.split('  ')[0]).to.equal(sha256File(path.join(dir, l.split('  ')[1])));
    expect(loadCheckpoint(dir).weights[0].values).to.deep.equal(new Float32Array([1, 2, 3, 4]));
  });

  for (const [what, damage] of [
    ['a flipped byte in weights.bin', (f: string) => flipByte(f, 5)],
    ['a truncated weights.bin', (f: string) => fs.truncateSync(f, 7)],
  ] as const) {
    it(`${what}: one line naming the file and the intact checkpoints/best`, async () => {
      const root = path.join(tmpDir(), 'checkpoints');
      await saveCheckpoint(path.join(root, 'last'), checkpoint());
      await saveCheckpoint(path.join(root, 'best'), checkpoint());
      damage(path.join(root, 'last', 'weights.bin'));
      let err: unknown;
      try {
        loadCheckpoint(path.join(root, 'last'));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(UserError);
      const msg = (err as Error).message;
      expect(msg).to.not.include('\n');
      expect(msg).to.match(
        new RegExp(
          `^resume: ${path.join(root, 'last', 'weights.bin').replace(/[.]/g, '\\.')}: is corrupt or truncated: its SHA-256 is [0-9a-f]{12}…, checksums\\.sha256 records [0-9a-f]{12}…; intact: ${path.join(root, 'best').replace(/[.]/g, '\\.')} `,
        ),
      );
    });
  }

  it('--resume with a corrupt checkpoints/last/state.json stops with one line naming best, never falls back silently', async () => {
    const run = tmpDir();
    const root = path.join(run, 'checkpoints');
    await saveCheckpoint(path.join(root, 'last'), checkpoint());
    await saveCheckpoint(path.join(root, 'best'), checkpoint());
    flipByte(path.join(root, 'last', 'state.json'), 3);
    expect(() => latestCheckpoint(run)).to.throw(UserError, /last\/state\.json: is corrupt or truncated.*; intact: .*checkpoints\/best /);
  });

  it('a corrupt checkpoint with nothing intact beside it says so', async () => {
    const dir = path.join(tmpDir(), 'checkpoints', 'last');
    await saveCheckpoint(dir, checkpoint());
    flipByte(path.join(dir, 'optimizer.bin'));
    expect(() => loadCheckpoint(dir)).to.throw(UserError, /optimizer\.bin: is corrupt or truncated.*; no other checkpoint of this run is intact$/);
  });

  it('an export with a corrupt weights.bin is refused by loadExport with one line naming it', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const dir = path.join(tmpDir(), 'model');
    await replaceFolderAtomic(dir, (tmp) => writeModelArtifacts(tmp, artifacts!));
    expect((await loadExport(dir)).model.outputs[0].shape).to.deep.equal([null, 2]);
    flipByte(path.join(dir, 'weights.bin'));
    let err: unknown;
    try {
      await loadExport(dir);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(UserError);
    expect((err as Error).message).to.match(/model\/weights\.bin: is corrupt or truncated/);
  });

  it('folders written before checksums existed still load', async () => {
    const dir = path.join(tmpDir(), 'checkpoints', 'last');
    await saveCheckpoint(dir, checkpoint());
    fs.rmSync(path.join(dir, CHECKSUM_FILE));
    expect(loadCheckpoint(dir).trainer.step).to.equal(3);
  });
});

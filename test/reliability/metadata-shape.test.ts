/**
 * Metadata read back is validated (issue 13, item 7): a checkpoint's state.json and an export's metadata.json of the
 * wrong shape are refused with one line naming the file and the field; labels must match the model's outputs.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tmpDir } from '../helpers/images';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint/store';
import type { Checkpoint } from '../../src/train/checkpoint/format';
import { writeChecksums } from '../../src/io/checksum';
import { replaceFolderAtomic } from '../../src/export/atomic';
import { loadExport } from '../../src/export/exporter';
import { writeModelArtifacts } from '../../src/models/io';
import { UserError } from '../../src/errors';
import { tinyCheckpoint } from '../helpers/checkpoint';

const ck: Checkpoint = tinyCheckpoint({
  weights: [{ name: 'w', shape: [2], dtype: 'float32', values: new Float32Array([1, 2]) }],
  optimizer: { algorithm: 'sgd', step: 3, vars: {} },
});

/** Edits a JSON file the way a user would, checksums brought up to date so only the shape is wrong. */
function edit(file: string, change: (o: Record<string, any>) => void): void {
  const o = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(o);
  fs.writeFileSync(file, JSON.stringify(o));
  writeChecksums(path.dirname(file));
}

function oneLine(fn: () => unknown, pattern: RegExp): Promise<void> {
  return (async () => {
    let err: unknown;
    try {
      await fn();
    } catch (e) {
      err = e;
    }
    expect(err, 'no error').to.be.instanceOf(UserError);
    expect((err as Error).message).to.not.include('\n');
    expect((err as Error).message).to.match(pattern);
  })();
}

describe('reliability: metadata shape', () => {
  for (const [what, change, pattern] of [
    ['a step that is a string', (o: any) => (o.trainer.step = 'x'), /state\.json: bad checkpoint state: trainer\.step: /],
    ['no weights list', (o: any) => delete o.weights, /state\.json: bad checkpoint state: weights: /],
    ['a negative blob offset', (o: any) => (o.weights[0].offset = -4), /state\.json: bad checkpoint state: weights\.0\.offset: /],
  ] as const) {
    it(`checkpoint state.json with ${what}: one line naming the field`, async () => {
      const dir = path.join(tmpDir(), 'last');
      await saveCheckpoint(dir, ck);
      edit(path.join(dir, 'state.json'), change);
      await oneLine(() => loadCheckpoint(dir), new RegExp(`^resume: .*${pattern.source}`));
    });
  }

  async function exportDir(): Promise<string> {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [3] })] });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const dir = path.join(tmpDir(), 'model');
    const meta = {
      layertuneVersion: '0',
      labels: ['cat', 'dog'],
      inputSize: 224,
      preprocessing: { kind: 'scale', low: -1, high: 1 },
      backbone: { arch: 'x', source: 'y' },
      createdAt: 'now',
    };
    await replaceFolderAtomic(dir, (tmp) => {
      writeModelArtifacts(tmp, artifacts!);
      fs.writeFileSync(path.join(tmp, 'metadata.json'), JSON.stringify(meta));
    });
    return dir;
  }

  it('a good export metadata.json loads', async () => {
    expect((await loadExport(await exportDir())).metadata!.labels).to.deep.equal(['cat', 'dog']);
  });

  for (const [what, change, pattern] of [
    ['three labels for two outputs', (o: any) => o.labels.push('bird'), /metadata\.json: bad metadata: 3 labels for a model with 2 outputs$/],
    ['an input size of 5', (o: any) => (o.inputSize = 5), /metadata\.json: bad metadata: inputSize: /],
    ['labels that are not strings', (o: any) => (o.labels = [1, 2]), /metadata\.json: bad metadata: labels\.0: /],
    ['an unknown preprocessing', (o: any) => (o.preprocessing = { kind: 'magic' }), /metadata\.json: bad metadata: preprocessing/],
  ] as const) {
    it(`export metadata.json with ${what}: one line, no class_N names`, async () => {
      const dir = await exportDir();
      edit(path.join(dir, 'metadata.json'), change);
      await oneLine(() => loadExport(dir), pattern);
    });
  }

  it('export metadata.json that is not JSON: one line', async () => {
    const dir = await exportDir();
    fs.writeFileSync(path.join(dir, 'metadata.json'), '{"labels": [');
    writeChecksums(dir);
    await oneLine(() => loadExport(dir), /metadata\.json: not valid JSON/);
  });
});

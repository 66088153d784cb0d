import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { attachHead } from '../../src/models/network';
import { LayersModelExporter } from '../../src/export/exporter';
import { decodeImage } from '../../src/data/decode';
import { preprocessBatch } from '../../src/data/preprocess';
import { loadClassifier, predictFiles } from '../../src/predict';
import { replaceFolderAtomic, recoverFolder } from '../../src/export/atomic';
import { tmpDir } from '../helpers/images';

const ROOT = path.join(__dirname, '..', '..');
const SHIPPED = path.join(ROOT, 'models', 'mobilenet_v1_0.25_224');
const FLOWERS = path.join(ROOT, 'data', 'flowers');

describe('export', function () {
  this.timeout(120000);
  before(async () => {
    await tf.setBackend('cpu');
  });

  it('writes model.json, weights and metadata that a plain tfjs script loads with the same top-1 as predict', async () => {
    const b = await loadLayersFolder(SHIPPED, { inputSize: 96 });
    const classes = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];
    const net = attachHead(b, classes, { dropout: 0.2, seed: 3 });
    // give the head non-trivial weights so predictions differ between images
    const dense = net.train.getLayer('lt_head_dense');
    dense.setWeights(dense.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.5, 'float32', 11)));
    const out = path.join(tmpDir('lt-export-'), 'model');
    await new LayersModelExporter().export(net, out, { trainingConfig: { note: 'test' }, metrics: { acc: 1 } });
    expect(fs.readdirSync(out).sort()).to.deep.equal(['checksums.sha256', 'metadata.json', 'model.json', 'weights.bin']);
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'metadata.json'), 'utf8'));
    expect(meta.labels).to.deep.equal(classes);
    expect(meta.inputSize).to.equal(96);
    expect(meta.preprocessing).to.deep.equal({ kind: 'scale', low: -1, high: 1 });
    expect(meta.backbone.arch).to.equal('mobilenet_v1_0.25');
    expect(meta.layertuneVersion).to.match(/^\d+\.\d+\.\d+/);
    expect(meta.trainingConfig).to.deep.equal({ note: 'test' });

    const files = classes.map((c) => path.join(FLOWERS, c, fs.readdirSync(path.join(FLOWERS, c))[0]));
    const ours = (await predictFiles(await loadClassifier(out), files, 1)).map((p) => p.top[0].label);
    const px = await Promise.all(files.map((f) => decodeImage(f, { size: 96 })));
    const all = new Uint8Array(px.length * px[0].length);
    px.forEach((p, i) => all.set(p, i * p.length));
    const x = preprocessBatch(all, files.length, 96, meta.preprocessing);
    const inputFile = path.join(tmpDir(), 'x.f32');
    fs.writeFileSync(inputFile, Buffer.from(((await x.data()) as Float32Array).buffer));
    x.dispose();
    const plain = JSON.parse(
      execFileSync('node', [path.join(ROOT, 'scripts', 'plain-load-export.js'), out, inputFile, String(files.length)], { cwd: ROOT, encoding: 'utf8' })
        .trim()
        .split('\n')
        .pop()!,
    );
    expect(plain).to.deep.equal(ours);
    expect(new Set(ours).size).to.be.greaterThan(1);
  });

  it('never leaves a half-written export: a writer killed mid-write leaves the previous export intact', async () => {
    const target = path.join(tmpDir('lt-atomic-'), 'model');
    await replaceFolderAtomic(target, (tmp) => fs.writeFileSync(path.join(tmp, 'model.json'), '{"v":1}'));
    // a child that starts replacing the folder and is killed with SIGKILL while writing a big file
    const child = spawn(
      process.execPath,
      [
        '-r',
        'tsx/cjs',
        '-e',
        `
      const fs = require('fs'); const path = require('path');
      const { replaceFolderAtomic } = require(${JSON.stringify(path.join(ROOT, 'src', 'export', 'atomic.ts'))});
      replaceFolderAtomic(${JSON.stringify(target)}, async (tmp) => {
        fs.writeFileSync(path.join(tmp, 'model.json'), '{"v":2}');
        const fd = fs.openSync(path.join(tmp, 'weights.bin'), 'w');
        console.log('writing'); 
        for (;;) fs.writeSync(fd, Buffer.alloc(1 << 20));
      });
    `,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 200));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    recoverFolder(target);
    expect(fs.readFileSync(path.join(target, 'model.json'), 'utf8')).to.equal('{"v":1}');
    expect(fs.existsSync(path.join(target, 'weights.bin'))).to.equal(false);
    // the next replace succeeds and cleans nothing it should not
    await replaceFolderAtomic(target, (tmp) => fs.writeFileSync(path.join(tmp, 'model.json'), '{"v":3}'));
    expect(fs.readFileSync(path.join(target, 'model.json'), 'utf8')).to.equal('{"v":3}');
  });

  it('restores the previous export when a crash fell between the two renames', () => {
    const parent = tmpDir('lt-atomic-');
    const target = path.join(parent, 'model');
    fs.mkdirSync(path.join(parent, '.model.old'));
    fs.writeFileSync(path.join(parent, '.model.old', 'model.json'), 'old');
    recoverFolder(target);
    expect(fs.readFileSync(path.join(target, 'model.json'), 'utf8')).to.equal('old');
  });
});

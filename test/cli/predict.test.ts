import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadLayersFolder } from '../../src/models/tfjs-layers';
import { attachHead } from '../../src/models/network';
import { LayersModelExporter } from '../../src/export/exporter';
import { predictionsCsv } from '../../src/predict';
import { tmpDir } from '../helpers/images';
import { layertune, ROOT } from './run';

const FLOWERS = path.join(ROOT, 'data', 'flowers');
const CLASSES = ['daisy', 'dandelion', 'rose', 'sunflower', 'tulip'];

describe('layertune predict for deployment: folders, --batch, --json, --csv', function () {
  this.timeout(180000);
  let model: string;
  let photos: string;
  let labelled: string;
  before(async () => {
    await tf.setBackend('cpu');
    const net = attachHead(await loadLayersFolder(path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'), { inputSize: 96 }), CLASSES, { dropout: 0, seed: 3 });
    const dense = net.train.getLayer('lt_head_dense');
    dense.setWeights(dense.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.1, 'float32', 11)));
    model = path.join(tmpDir('lt-pred-'), 'model');
    await new LayersModelExporter().export(net, model, { trainingConfig: {}, metrics: {} });
    // a nested tree with a non-image file and a name that needs CSV quoting
    photos = tmpDir('lt-pred-photos-');
    const pick = (c: string, i: number) => path.join(FLOWERS, c, fs.readdirSync(path.join(FLOWERS, c))[i]);
    fs.copyFileSync(pick('daisy', 0), path.join(photos, 'b.jpg'));
    fs.mkdirSync(path.join(photos, 'deep', 'er'), { recursive: true });
    fs.copyFileSync(pick('rose', 0), path.join(photos, 'deep', 'a "x", y.jpg'));
    fs.copyFileSync(pick('tulip', 1), path.join(photos, 'deep', 'er', 'c.JPG'));
    fs.writeFileSync(path.join(photos, 'deep', 'notes.txt'), 'not an image');
    // a small labelled folder, so evaluate with five-crop TTA stays quick
    labelled = tmpDir('lt-pred-labelled-');
    for (const c of ['daisy', 'rose']) {
      fs.mkdirSync(path.join(labelled, c));
      for (const i of [0, 1]) fs.copyFileSync(pick(c, i), path.join(labelled, c, `${i}.jpg`));
    }
  });

  it('walks a folder recursively in sorted order; --batch 1 and 16 give the same probabilities; CSV and JSON agree', () => {
    const j1 = layertune(['predict', '--model', model, photos, '--json', '--top', '5', '--batch', '1', '--backend', 'cpu']);
    expect(j1.code, j1.stderr).to.equal(0);
    const a = JSON.parse(j1.stdout);
    expect(a.map((p: { file: string }) => path.relative(photos, p.file))).to.deep.equal([
      'b.jpg',
      path.join('deep', 'a "x", y.jpg'),
      path.join('deep', 'er', 'c.JPG'),
    ]);
    const j16 = JSON.parse(layertune(['predict', '--model', model, photos, '--json', '--top', '5', '--backend', 'cpu']).stdout);
    a.forEach((p: { top: Array<{ probability: number; label: string }> }, i: number) =>
      p.top.forEach((t, k) => {
        expect(t.label).to.equal(j16[i].top[k].label);
        expect(t.probability).to.be.closeTo(j16[i].top[k].probability, 1e-6);
      }),
    );
    for (const p of a) expect(p.top.reduce((s: number, t: { probability: number }) => s + t.probability, 0)).to.be.closeTo(1, 1e-5);
    const csv = layertune(['predict', '--model', model, photos, '--csv', '--top', '2', '--backend', 'cpu']);
    expect(csv.code, csv.stderr).to.equal(0);
    const lines = csv.stdout.trimEnd().split('\n');
    expect(lines[0]).to.equal('file,label_1,probability_1,label_2,probability_2');
    expect(lines).to.have.length(4);
    // the quoted name survives: quotes doubled, the whole field in quotes
    expect(lines[2].startsWith(`"${path.join(photos, 'deep', 'a ""x"", y.jpg')}",${j16[1].top[0].label},`)).to.equal(true);
  });

  it('reports images/s over the whole run (JSON summary on stderr, a human line otherwise); --threads 2 gives the same answers', () => {
    const t0 = Date.now();
    const r = layertune(['predict', '--model', model, photos, '--json', '--top', '5', '--batch', '1', '--threads', '2', '--backend', 'cpu']);
    const wall = (Date.now() - t0) / 1000;
    expect(r.code, r.stderr).to.equal(0);
    const line = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop()!;
    const { summary } = JSON.parse(line);
    expect(summary.images).to.equal(3);
    expect(summary.threads).to.equal(2);
    expect(summary.seconds).to.be.greaterThan(0);
    // the run inside the process cannot take longer than the process
    expect(summary.seconds).to.be.at.most(wall);
    expect(summary.imagesPerSecond).to.be.greaterThan(0);
    // both rounded for printing: 2 decimals of images/s, 3 of seconds
    expect(summary.imagesPerSecond).to.be.closeTo(summary.images / summary.seconds, 0.01 + summary.imagesPerSecond * 2e-3);
    // stdout is still the bare array, and two worker threads give the one-thread answers
    const two = JSON.parse(r.stdout);
    const one = JSON.parse(
      layertune(['predict', '--model', model, photos, '--json', '--top', '5', '--batch', '1', '--threads', '1', '--backend', 'cpu']).stdout,
    );
    two.forEach((p: { top: Array<{ probability: number; index: number }> }, i: number) =>
      p.top.forEach((t, k) => {
        expect(t.index).to.equal(one[i].top[k].index);
        expect(t.probability).to.be.closeTo(one[i].top[k].probability, 1e-6);
      }),
    );
    const human = layertune(['predict', '--model', model, photos, '--backend', 'cpu']);
    expect(human.code, human.stderr).to.equal(0);
    expect(human.stderr).to.match(/^3 image\(s\) in \d+\.\d\d s: \d+\.\d images\/s \(batch 16, threads 1 \(auto: the cpu backend\); decode included\)$/m);
  });

  it('evaluate --json carries the run summary; --threads 2 gives the one-thread confusion matrix', () => {
    const labelled = tmpDir('lt-eval-cli-');
    for (const c of ['daisy', 'rose']) {
      fs.mkdirSync(path.join(labelled, c));
      for (const f of fs.readdirSync(path.join(FLOWERS, c)).slice(0, 2)) fs.copyFileSync(path.join(FLOWERS, c, f), path.join(labelled, c, f));
    }
    const run = (threads: string) => {
      const r = layertune(['evaluate', '--model', model, '--data', labelled, '--json', '--batch', '1', '--threads', threads, '--backend', 'cpu']);
      expect(r.code, r.stderr).to.equal(0);
      return JSON.parse(r.stdout);
    };
    const [one, two] = [run('1'), run('2')];
    expect(two.summary).to.include({ images: 4, batch: 1, threads: 2 });
    expect(one.summary.threads).to.equal(1);
    expect(two.summary.imagesPerSecond).to.be.greaterThan(0);
    expect(two.confusion).to.deep.equal(one.confusion);
    expect(two.n).to.equal(4);
  });

  it('--tta flip averages the image and its mirror; evaluate takes the same view flags', () => {
    const base = JSON.parse(layertune(['predict', '--model', model, photos, '--json', '--top', '5', '--backend', 'cpu']).stdout);
    const flip = layertune(['predict', '--model', model, photos, '--json', '--top', '5', '--tta', 'flip', '--backend', 'cpu']);
    expect(flip.code, flip.stderr).to.equal(0);
    const f = JSON.parse(flip.stdout);
    // a real (not mirror-symmetric) network: the averaged probabilities move, and still sum to 1
    let moved = 0;
    f.forEach((p: { top: Array<{ probability: number; index: number }> }, i: number) => {
      expect(p.top.reduce((s, t) => s + t.probability, 0)).to.be.closeTo(1, 1e-5);
      const b = base[i].top.find((t: { index: number }) => t.index === p.top[0].index);
      moved = Math.max(moved, Math.abs(b.probability - p.top[0].probability));
    });
    expect(moved).to.be.greaterThan(1e-4);
    const ev = layertune(['evaluate', '--model', model, '--data', labelled, '--json', '--tta', 'crops', '--crop', 'center', '--backend', 'cpu']);
    expect(ev.code, ev.stderr).to.equal(0);
    expect(JSON.parse(ev.stdout).n).to.equal(4);
  });

  it('bad view flags: --tta, --crop, --crop-pct out of range: one line each, exit 2, for predict and evaluate', () => {
    for (const [args, re] of [
      [['--tta', 'mirror'], /^error: --tta: expected one of none, flip, crops, got "mirror"$/m],
      [['--crop', 'letterbox'], /^error: --crop: expected fill or center, got "letterbox"$/m],
      [['--crop-pct', '1.5'], /^error: --crop-pct: expected a number in \(0, 1\], got 1.5$/m],
    ] as const) {
      for (const cmd of [
        ['predict', '--model', model, photos],
        ['evaluate', '--model', model, '--data', labelled],
      ]) {
        const r = layertune([...cmd, ...args, '--backend', 'cpu']);
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stderr).to.match(re);
        expect(r.stderr.trim().split('\n')).to.have.length(1);
      }
    }
  });

  it('quotes CSV fields per RFC 4180 (hand-written expectation)', () => {
    const csv = predictionsCsv([{ file: 'a,b "c".jpg', top: [{ label: 'x', index: 0, probability: 0.5 }] }]);
    expect(csv).to.equal('file,label_1,probability_1\n"a,b ""c"".jpg",x,0.5\n');
  });

  it('bad input: a missing path, --json with --csv, --batch 0, --threads 0: one line each, exit 2', () => {
    for (const [args, re] of [
      [[path.join(photos, 'missing')], /^error: .*missing: no such file or folder$/m],
      [[photos, '--json', '--csv'], /^error: --csv: choose one of --json and --csv$/m],
      [[photos, '--batch', '0'], /^error: --batch: expected a positive integer, got 0$/m],
      [[photos, '--threads', '0'], /^error: --threads: expected auto or an integer from 1 to 16, got 0$/m],
    ] as const) {
      const r = layertune(['predict', '--model', model, ...args, '--backend', 'cpu']);
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.match(re);
      expect(r.stderr).to.not.match(/^\s+at /m);
    }
  });
});

import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { cli } from '../reliability/cli';

const FIX = path.join(__dirname, '..', 'fixtures', 'imagenet');
const MODEL = 'models/mobilenet_v1_0.25_224';

/** labels.tsv rows (a copy of shared/data/imagenet-samples/labels.tsv restricted to the copied photos). */
function labels(): Array<Record<string, string>> {
  const [head, ...rows] = fs
    .readFileSync(path.join(FIX, 'labels.tsv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i]])));
}

describe('models: the shipped ImageNet MobileNet through `layertune predict` (issue 6, item 4)', function () {
  this.timeout(120_000);

  it('gives labels.tsv top-1 (top1_mobilenet_v1_0.25_224) for every fixture photo, with the ImageNet class names', () => {
    const rows = labels();
    expect(rows.length).to.be.within(5, 10);
    const files = rows.map((r) => path.join(FIX, r.file));
    const r = cli(['predict', '--model', MODEL, '--backend', 'wasm', '--json', '--top', '5', ...files]);
    expect(r.code, r.stderr).to.equal(0);
    const preds = JSON.parse(r.stdout) as Array<{ file: string; top: Array<{ label: string; index: number; probability: number }> }>;
    expect(preds.map((p) => path.basename(p.file))).to.deep.equal(rows.map((row) => row.file));
    const names = fs
      .readFileSync(path.join(MODEL, '..', 'imagenet_labels_1000.txt'), 'utf8')
      .split('\n')
      .map((s) => s.trim());
    preds.forEach((p, i) => {
      const expected = Number(rows[i]['top1_mobilenet_v1_0.25_224']);
      expect(p.top[0].index, p.file).to.equal(expected);
      // the labels file beside the model folder names the classes (not class_N)
      expect(p.top[0].label).to.equal(names[expected]);
      expect(p.top.length).to.equal(5);
      const probs = p.top.map((t) => t.probability);
      expect([...probs].sort((a, b) => b - a)).to.deep.equal(probs);
    });
  });
});

/**
 * Side-by-side fine-tuning: layertune vs the PyTorch peer (../shared/peer/torch_finetune.py), same
 * pretrained weights, same train/validation split, same recipe, for head-only and layer-wise
 * training with BatchNorm frozen and on batch statistics. Prints a markdown table.
 *
 *   npx tsx scripts/compare-peer.ts [--data DIR] [--epochs 8] [--size 224] [--batch 16] [--only layerwise/batch,...]
 *
 * The peer needs Debian's python3-torch (sh ../shared/peer/setup.sh); it is never a dependency of layertune.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { runJob } from '../src/job';
import { materialiseSplit, PEER_GROUP_RULES } from './bench/peer-split';

const ROOT = path.join(__dirname, '..');
const SHARED = path.join(ROOT, '..', 'shared');
const { values: a } = parseArgs({
  options: {
    data: {
      type: 'string',
      default: fs.existsSync(path.join(SHARED, 'data', 'flowers5')) ? path.join(SHARED, 'data', 'flowers5') : path.join(ROOT, 'data', 'flowers'),
    },
    epochs: { type: 'string', default: '8' },
    size: { type: 'string', default: '224' },
    batch: { type: 'string', default: '16' },
    only: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
  },
});
const epochs = Number(a.epochs);
const size = Number(a.size);
const batch = Number(a.batch);
const REF_LRS = [0.001, 0.01, 0.1];
const scaled = REF_LRS.map((r) => (r * batch) / 256);

interface Row {
  recipe: string;
  bn: string;
  ltAcc: number;
  ltSecs: number;
  peerAcc: number;
  peerSecs: number;
}

async function main(): Promise<void> {
  const split = materialiseSplit(a.data!);
  console.error(`split: ${split.nTrain} train / ${split.nVal} val from ${a.data} (seed 42, stratified 0.2) in ${split.dir}`);
  const rows: Row[] = [];
  const configs = [
    ['headonly', 'frozen'],
    ['headonly', 'batch'],
    ['layerwise', 'frozen'],
    ['layerwise', 'batch'],
    ['literal', 'batch'],
  ].filter(([r, b]) => !a.only || a.only.split(',').includes(`${r}/${b}`));
  for (const [recipe, bn] of configs) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `lt-peer-${recipe}-${bn}-`));
    const rules = recipe === 'headonly' ? [{ match: '^(?!lt_head)', freeze: true }] : PEER_GROUP_RULES;
    // 'literal': the recipe's rates taken at face value at this batch, i.e. without linear scaling
    const literal = recipe === 'literal';
    const t0 = Date.now();
    const res = await runJob(
      {
        data: { dir: path.join(split.dir) },
        model: { size, batchNorm: bn as 'batch' | 'frozen' },
        train: { epochs, batch, monitorRatios: false },
        groups: { rules },
        lr: { scaling: literal ? 'none' : 'linear' },
        backend: a.backend as 'auto',
        out,
      },
      { log: () => undefined },
    );
    const ltSecs = (Date.now() - t0) / 1000;
    const peerArgs = [
      path.join(SHARED, 'peer', 'torch_finetune.py'),
      '--model-dir',
      path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'),
      '--train',
      path.join(split.dir, 'train'),
      '--val',
      path.join(split.dir, 'val'),
      '--recipe',
      literal ? 'layerwise' : recipe,
      '--lrs',
      (literal ? REF_LRS : scaled).join(','),
      '--bn',
      bn === 'batch' ? 'train' : 'frozen',
      '--epochs',
      String(epochs),
      '--size',
      String(size),
      '--batch',
      String(batch),
    ];
    const t1 = Date.now();
    const lines = execFileSync('/usr/bin/python3', peerArgs, { encoding: 'utf8', maxBuffer: 1 << 24 })
      .trim()
      .split('\n');
    const peerSecs = (Date.now() - t1) / 1000;
    const last = JSON.parse(lines[lines.length - 1]);
    const row = { recipe, bn, ltAcc: res.val!.accuracy, ltSecs, peerAcc: last.val_acc, peerSecs };
    console.error(JSON.stringify(row));
    rows.push(row);
  }
  console.log(
    `\n${split.nTrain} train / ${split.nVal} val images, ${size}px, batch ${batch}, ${epochs} epochs, rates ${REF_LRS.join('/')} at batch 256 → ${scaled.join('/')}, SGD momentum 0.9, wd 5e-4 on kernels, biases 2x\n`,
  );
  console.log('| recipe | BatchNorm | layertune val acc | layertune time (s) | PyTorch val acc | PyTorch time (s) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.recipe} | ${r.bn} | ${r.ltAcc.toFixed(3)} | ${r.ltSecs.toFixed(0)} | ${r.peerAcc.toFixed(3)} | ${r.peerSecs.toFixed(0)} |`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

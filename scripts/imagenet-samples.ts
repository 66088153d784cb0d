/**
 * How the shipped ImageNet MobileNet classifies the labelled sample photos in ../shared/data/imagenet-samples
 * through the same path as `layertune predict` (loadClassifier + predictFiles, no new head).
 *
 *   npx tsx scripts/imagenet-samples.ts [--model models/mobilenet_v1_0.25_224] [--samples DIR] [--backend wasm] [--crop center|fill]
 *
 * `--crop center` (the default for a plain classifier, as `layertune predict` uses it) scales the shorter side to
 * the input size and crops the middle, which is how labels.tsv's columns were computed; `fill` stretches the
 * whole photo to a square (how layertune and the PyTorch peer train).
 *
 * Prints one JSON line per photo ({file, top1, expectedTop1, accepted, top5}) and a summary line with top-1 / top-5
 * accuracy against the accepted indices and the agreement with labels.tsv's `top1_<model>` column.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { selectBackend } from '../src/engine/backend';
import { loadClassifier, predictFiles } from '../src/predict';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

/** `281,282` and `151..268` → the set of accepted ImageNet indices. */
function parseAccepted(s: string): Set<number> {
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^(\d+)\.\.(\d+)$/.exec(part.trim());
    if (m) for (let i = Number(m[1]); i <= Number(m[2]); i++) out.add(i);
    else if (part.trim() !== '') out.add(Number(part));
  }
  return out;
}

async function main(): Promise<void> {
  const modelDir = arg('--model', 'models/mobilenet_v1_0.25_224');
  const samples = arg('--samples', path.join(__dirname, '..', '..', 'shared', 'data', 'imagenet-samples'));
  await selectBackend(arg('--backend', 'auto'));
  const rows = fs
    .readFileSync(path.join(samples, 'labels.tsv'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  const header = rows.shift()!;
  const col = (name: string): number => header.indexOf(name);
  const expectedCol = col(`top1_${path.basename(path.resolve(modelDir))}`);
  const crop = arg('--crop', 'center') as 'center' | 'fill';
  const c = await loadClassifier(modelDir, undefined, crop);
  const files = rows.map((r) => path.join(samples, r[col('file')]));
  const preds = await predictFiles(c, files, 5);
  let top1 = 0;
  let top5 = 0;
  let agree = 0;
  preds.forEach((p, i) => {
    const accepted = parseAccepted(rows[i][col('accepted_indices')]);
    const expectedTop1 = expectedCol >= 0 ? Number(rows[i][expectedCol]) : null;
    const got = p.top.map((t) => t.index);
    if (accepted.has(got[0])) top1++;
    if (got.some((g) => accepted.has(g))) top5++;
    if (expectedTop1 === got[0]) agree++;
    console.log(
      JSON.stringify({ file: path.basename(p.file), top1: got[0], label: p.top[0].label, expectedTop1, accepted: rows[i][col('accepted_indices')], top5: got }),
    );
  });
  const n = preds.length;
  console.log(JSON.stringify({ model: modelDir, crop, n, top1: top1 / n, top5: top5 / n, agreeWithLabelsTsv: expectedCol >= 0 ? agree / n : null }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

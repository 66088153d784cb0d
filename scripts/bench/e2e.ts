/**
 * npm run bench -- --e2e: whole epochs over a real photo folder, decode + train + validation, layertune against the
 * PyTorch peer (../shared/peer/torch_finetune.py) on the same split, size, batch, recipe and pretrained weights,
 * interleaved run by run so both see the same load. The peer decodes each photo once and keeps it (its DataLoader-style
 * decode is inside its epoch time), as layertune's decoded-image cache does.
 *
 * usage: npm run bench -- --e2e [--data DIR] [--epochs 1] [--runs 3] [--size 224] [--batch 16] [--threads auto|N]
 *        [--peer-threads 2] [--backend auto] [--quick] [--no-peer]
 * --quick: one epoch over 8 images per class and one run (unless --runs is given): proves the bench works.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runJob } from '../../src/job';
import { disposeNetwork } from '../../src/tune/parts';
import { printFooter, printHeader, PEER_PYTHON } from './header';
import { materialiseSplit, PEER_GROUP_RULES } from './peer-split';
import { arg, median } from './stats';

const ROOT = path.join(__dirname, '..', '..');
const SHARED = path.join(ROOT, '..', 'shared');
const REF_LRS = [0.001, 0.01, 0.1];

interface Times {
  /** The epochs' own time: decode, training steps, validation. */
  epochs: number;
  /** The whole process or job, model loading and (layertune) the export included. */
  wall: number;
}

async function runLayertune(split: string, o: Opts): Promise<Times & { threads: string; backend: string }> {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-e2e-'));
  const lines: string[] = [];
  const t0 = performance.now();
  const res = await runJob(
    {
      data: { dir: split },
      model: { size: o.size, batchNorm: 'frozen' },
      train: { epochs: o.epochs, batch: o.batch, monitorRatios: false, threads: o.threads },
      groups: { rules: PEER_GROUP_RULES },
      lr: { scaling: 'linear' },
      backend: o.backend as 'auto',
      out,
    },
    { log: (l) => lines.push(l) },
  );
  const wall = (performance.now() - t0) / 1000;
  // runJob hands the trained network to its caller: free it, or each run's weights stay for the next (137 tensors)
  disposeNetwork(res.network);
  fs.rmSync(out, { recursive: true, force: true });
  const threadLine = lines.find((l) => l.startsWith('threads: '));
  return {
    epochs: res.fit.history.reduce((s, e) => s + e.seconds, 0),
    wall,
    backend: res.backend.chosen,
    threads: threadLine ? threadLine.slice('threads: '.length).split(';')[0] : '1',
  };
}

function runPeer(split: string, o: Opts): Times {
  const args = [
    o.peer,
    '--model-dir',
    path.join(ROOT, 'models', 'mobilenet_v1_0.25_224'),
    '--train',
    path.join(split, 'train'),
    '--val',
    path.join(split, 'val'),
    '--recipe',
    'layerwise',
    '--lrs',
    REF_LRS.map((r) => (r * o.batch) / 256).join(','),
    '--bn',
    'frozen',
    '--epochs',
    String(o.epochs),
    '--size',
    String(o.size),
    '--batch',
    String(o.batch),
    '--threads',
    String(o.peerThreads),
  ];
  const t0 = performance.now();
  const outLines = execFileSync(PEER_PYTHON, args, { encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'] })
    .trim()
    .split('\n');
  const wall = (performance.now() - t0) / 1000;
  const last = JSON.parse(outLines[outLines.length - 1]) as { secs: number };
  return { epochs: last.secs, wall };
}

interface Opts {
  data: string;
  epochs: number;
  runs: number;
  size: number;
  batch: number;
  threads: 'auto' | number;
  peerThreads: number;
  backend: string;
  perClass?: number;
  peer: string;
  usePeer: boolean;
}

function options(): Opts {
  const quick = process.argv.includes('--quick');
  const flowers5 = path.join(SHARED, 'data', 'flowers5');
  const peer = arg('peer', path.join(SHARED, 'peer', 'torch_finetune.py'));
  const threads = arg('threads', 'auto');
  return {
    data: arg('data', fs.existsSync(flowers5) ? flowers5 : path.join(ROOT, 'data', 'flowers')),
    epochs: quick ? 1 : Number(arg('epochs', '1')),
    runs: Number(arg('runs', quick ? '1' : '3')),
    size: Number(arg('size', '224')),
    batch: Number(arg('batch', '16')),
    threads: threads === 'auto' ? 'auto' : Number(threads),
    peerThreads: Number(arg('peer-threads', '2')),
    backend: arg('backend', 'auto'),
    perClass: quick ? 8 : undefined,
    peer,
    usePeer: !process.argv.includes('--no-peer') && fs.existsSync(peer),
  };
}

const f1 = (v: number | null) => (v === null ? '-' : v.toFixed(1));

export async function mainE2e(): Promise<void> {
  const o = options();
  const split = materialiseSplit(o.data, o.perClass);
  const startLoad = printHeader(
    `train threads ${o.threads} (resolved per run below), backend ${o.backend}, size ${o.size}, batch ${o.batch}`,
    o.peerThreads,
    o.usePeer,
  );
  console.log(
    `# e2e: ${split.nTrain} train / ${split.nVal} val images from ${o.data}${o.perClass ? ` (first ${o.perClass} per class)` : ''}, ` +
      `${o.epochs} epoch(s), ${o.runs} run(s), mobilenet_v1_0.25 pretrained, layer-wise rates, BatchNorm frozen`,
  );
  if (!o.usePeer) console.log(`# peer script not found at ${o.peer} (or --no-peer): PyTorch columns stay empty`);
  const lt: Times[] = [];
  const pt: Times[] = [];
  try {
    for (let r = 0; r < o.runs; r++) {
      const a = await runLayertune(split.dir, o);
      lt.push(a);
      const b = o.usePeer ? runPeer(split.dir, o) : null;
      if (b) pt.push(b);
      console.log(
        `run ${r + 1}: layertune ${a.epochs.toFixed(1)} s epochs (${a.wall.toFixed(1)} s job; ${a.backend}, threads ${a.threads})` +
          (b ? `   pytorch ${b.epochs.toFixed(1)} s epochs (${b.wall.toFixed(1)} s process)` : ''),
      );
    }
  } finally {
    fs.rmSync(split.dir, { recursive: true, force: true });
  }
  const med = (xs: Times[], k: keyof Times) => (xs.length ? median(xs.map((x) => x[k])) : null);
  const ltE = med(lt, 'epochs');
  const ptE = med(pt, 'epochs');
  const ltW = med(lt, 'wall');
  const ptW = med(pt, 'wall');
  const ratio = (a: number | null, b: number | null) => (a !== null && b ? +(a / b).toFixed(3) : null);
  console.log(`median of ${o.runs}: layertune ${f1(ltE)} s, pytorch ${f1(ptE)} s, ratio ${ratio(ltE, ptE) ?? '-'} (epochs: decode + train + validation)`);
  console.log(`median of ${o.runs}: layertune ${f1(ltW)} s, pytorch ${f1(ptW)} s, ratio ${ratio(ltW, ptW) ?? '-'} (whole job / process)`);
  console.log(
    JSON.stringify({
      e2e: true,
      data: o.data,
      train: split.nTrain,
      val: split.nVal,
      epochs: o.epochs,
      runs: o.runs,
      size: o.size,
      batch: o.batch,
      layertune_epochs_s: ltE === null ? null : +ltE.toFixed(3),
      pytorch_epochs_s: ptE,
      ratio_e2e: ratio(ltE, ptE),
      layertune_wall_s: ltW === null ? null : +ltW.toFixed(3),
      pytorch_wall_s: ptW === null ? null : +ptW.toFixed(3),
      ratio_wall: ratio(ltW, ptW),
    }),
  );
  printFooter(startLoad);
}

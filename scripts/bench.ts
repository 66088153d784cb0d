/**
 * npm run bench: layertune's training step and inference per image on every available backend, next to
 * the PyTorch peer (../shared/peer/torch_bench.py) on the same model, size and batch, IN THE SAME RUN,
 * interleaved repeat by repeat so both see the same machine load. Medians over repeats.
 *
 * usage: npm run bench -- [--models a,b] [--backends wasm,wasm:2,cpu] [--repeats 3] [--steps 3] [--size 224]
 *        [--batch 16] [--cpu-models mobilenet_v1_0.25] [--no-peer] [--peer PATH]
 *        npm run bench -- --aug [--backends wasm] [--models mobilenet_v1_0.25]: epoch time with batched augmentation
 *        against flip-only (scripts/bench/augment.ts)
 *        npm run bench -- --e2e [--quick] [--runs 3]: whole epochs over a photo folder against torch_finetune.py
 *        (scripts/bench/e2e.ts)
 * --quick (any mode): one model, wasm and wasm:2, one repeat of one step; e2e: one epoch over 8 images per class.
 * Every output starts with a header (scripts/bench/header.ts): CPU, cores, load, node, kernel build, the peer's BLAS
 * and threads.
 * 'wasm:N' trains with gradients data-parallel over N worker threads (src/engine/wasm/parallel.ts) and infers
 * on N inference workers (src/engine/inference-pool.ts), as predict --threads N.
 * Each layertune measurement runs in its own process (scripts/bench/run-one.ts). The cpu backend takes
 * minutes per batch-16 step, so by default it is measured once (1 step, 1 inference) and only for
 * --cpu-models. A benchmark, not a test: CI does not run it.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BENCH_MODELS } from './bench/models';
import { arg, median } from './bench/stats';
import { mainE2e } from './bench/e2e';
import { printFooter, printHeader } from './bench/header';

const ROOT = path.join(__dirname, '..');
/** --quick: proves a mode works in about a minute (one model, one repeat, one step); its numbers mean nothing. */
const QUICK = process.argv.includes('--quick');

const list = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

interface Sample {
  train: number | null;
  infer: number | null;
}

/** 'wasm:2' = the wasm backend with training gradients data-parallel over 2 threads. */
function runLayertune(model: string, backendSpec: string, size: number, batch: number, steps: number, infers: number): Sample {
  const [backend, threads = '1'] = backendSpec.split(':');
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'scripts', 'bench', 'run-one.ts'),
      '--model',
      model,
      '--backend',
      backend,
      '--size',
      String(size),
      '--batch',
      String(batch),
      '--steps',
      String(steps),
      '--infers',
      String(infers),
      '--threads',
      threads,
      // cpu: minutes per step, and its first step is no slower than later ones (no compilation to warm)
      ...(backend === 'cpu' ? ['--no-warmup'] : []),
    ],
    { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 24 },
  );
  const line = out
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .pop();
  if (!line) throw new Error(`no result from run-one for ${model} on ${backend}`);
  const j = JSON.parse(line) as { train_ms_per_img: number | null; infer_ms_per_img: number | null };
  return { train: j.train_ms_per_img, infer: j.infer_ms_per_img };
}

function runPeer(peer: string, model: string, size: number, batch: number): Sample {
  const out = execFileSync('/usr/bin/python3', [peer, '--model', model, '--size', String(size), '--batch', String(batch)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const j = JSON.parse(out.trim().split('\n').pop()!) as { train_ms_per_img: number; infer_ms_per_img: number };
  return { train: j.train_ms_per_img, infer: j.infer_ms_per_img };
}

function availableBackends(): string[] {
  const out = ['wasm', `wasm:${Math.max(2, os.cpus().length)}`, 'cpu'];
  try {
    execFileSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], { cwd: ROOT, stdio: 'ignore' });
    out.unshift('tensorflow');
  } catch {
    // tfjs-node is optional and its native binary is often absent: nothing native to measure
  }
  return out;
}

const med = (xs: Array<number | null>): number | null => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? median(v) : null;
};
const fmt = (v: number | null, w = 10): string => (v === null ? '-' : v.toFixed(v < 10 ? 2 : 1)).padStart(w);

/**
 * --aug: per batch, the training step (run-one) plus the input path, flip-only against each augmentation set; the
 * epoch-time ratio is (step + transforms) / (step + flip-only), as an epoch is its batches' steps and inputs.
 */
function mainAug(): void {
  const model = list(arg('models', 'mobilenet_v1_0.25'))[0];
  const backend = list(arg('backends', 'wasm'))[0];
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '16'));
  const steps = Number(arg('steps', QUICK ? '1' : '3'));
  const startLoad = printHeader(`--aug: ${model} on ${backend}, size ${size}, batch ${batch}`, null, false);
  const step = runLayertune(model, backend, size, batch, steps, 0).train;
  if (step === null) throw new Error('no training step time');
  const stepMs = step * batch;
  const out = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'scripts', 'bench', 'augment.ts'),
      '--backend',
      backend.split(':')[0],
      '--size',
      String(size),
      '--batch',
      String(batch),
    ],
    {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const j = JSON.parse(
    out
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .pop() as string,
  ) as { ms_per_batch: Record<string, number> };
  const flip = j.ms_per_batch['flip-only'];
  console.log(`training step: ${stepMs.toFixed(0)} ms per batch of ${batch}`);
  console.log('input path                      ms/batch   epoch time vs flip-only');
  for (const [name, ms] of Object.entries(j.ms_per_batch)) {
    console.log(`${name.padEnd(30)} ${ms.toFixed(1).padStart(9)}   ${(((stepMs + ms) / (stepMs + flip) - 1) * 100).toFixed(1).padStart(6)}%`);
  }
  console.log(JSON.stringify({ model, backend, size, batch, step_ms_per_batch: stepMs, input_ms_per_batch: j.ms_per_batch }));
  printFooter(startLoad);
}

function main(): void {
  if (process.argv.includes('--e2e')) {
    mainE2e().catch((e) => {
      console.error(e);
      process.exit(1);
    });
    return;
  }
  if (process.argv.includes('--aug')) {
    mainAug();
    return;
  }
  const models = list(arg('models', QUICK ? 'mobilenet_v1_0.25' : BENCH_MODELS.join(',')));
  const backends = process.argv.includes('--backends') ? list(arg('backends', '')) : QUICK ? ['wasm', 'wasm:2'] : availableBackends();
  const cpuModels = list(arg('cpu-models', 'mobilenet_v1_0.25'));
  const repeats = Number(arg('repeats', QUICK ? '1' : '3'));
  const steps = Number(arg('steps', QUICK ? '1' : '3'));
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '16'));
  const peer = arg('peer', path.join(ROOT, '..', 'shared', 'peer', 'torch_bench.py'));
  const usePeer = !process.argv.includes('--no-peer') && fs.existsSync(peer);
  if (!usePeer && !process.argv.includes('--no-peer')) console.error(`peer not found at ${peer}: PyTorch columns stay empty`);

  // 'wasm:N' = N gradient threads for training and N inference workers
  const startLoad = printHeader(
    `backends ${backends.join('/')} (wasm:N = N training threads, N inference workers), size ${size}, batch ${batch}, repeats ${repeats}`,
    2,
    usePeer,
  );
  const rows: string[] = [];
  const jsonLines: string[] = [];
  for (const model of models) {
    const samples = new Map<string, Sample[]>();
    const push = (k: string, s: Sample): void => {
      samples.set(k, [...(samples.get(k) ?? []), s]);
    };
    for (let r = 0; r < repeats; r++) {
      for (const b of backends) {
        const slow = b === 'cpu';
        if (slow && (r > 0 || !cpuModels.includes(model))) continue;
        try {
          // wasm:N infers on N workers, a batch each (predict --threads N)
          push(b, runLayertune(model, b, size, batch, slow ? 1 : steps, slow ? 1 : steps));
        } catch (e) {
          console.error(`${model} on ${b} failed: ${(e as Error).message.split('\n')[0]}`);
        }
      }
      if (usePeer) push('pytorch', runPeer(peer, model, size, batch));
      console.error(`  ${model}: repeat ${r + 1}/${repeats} done`);
    }
    const p = samples.get('pytorch') ?? [];
    const pTrain = med(p.map((s) => s.train));
    const pInfer = med(p.map((s) => s.infer));
    const perBackend: Record<string, { train_ms_per_img: number | null; infer_ms_per_img: number | null; n: number }> = {};
    for (const b of backends) {
      const s = samples.get(b);
      if (!s) continue;
      const t = med(s.map((x) => x.train));
      const i = med(s.map((x) => x.infer));
      perBackend[b] = { train_ms_per_img: t, infer_ms_per_img: i, n: s.length };
      const label = b.includes(':') ? `${b.split(':')[0]} x${b.split(':')[1]}` : b;
      rows.push(
        `${model.padEnd(20)}${label.padEnd(12)}${fmt(t)}${fmt(i)}${fmt(pTrain)}${fmt(pInfer)}${fmt(t && pTrain ? t / pTrain : null, 9)}${fmt(i && pInfer ? i / pInfer : null, 9)}${String(s.length).padStart(4)}`,
      );
    }
    // layertune's fastest configuration for each column (native, wasm, wasm with worker threads, cpu).
    const fastest = (k: 'train_ms_per_img' | 'infer_ms_per_img'): [string, number] | undefined =>
      Object.entries(perBackend)
        .filter(([, v]) => v[k] != null)
        .map(([b, v]) => [b, v[k] as number] as [string, number])
        .sort((a, c) => a[1] - c[1])[0];
    const ft = fastest('train_ms_per_img');
    const fi = fastest('infer_ms_per_img');
    jsonLines.push(
      JSON.stringify({
        model,
        size,
        batch,
        train_backend: ft?.[0] ?? null,
        infer_backend: fi?.[0] ?? null,
        train_ms_per_img: ft?.[1] ?? null,
        infer_ms_per_img: fi?.[1] ?? null,
        pytorch_train_ms_per_img: pTrain,
        pytorch_infer_ms_per_img: pInfer,
        ratio_train: ft && pTrain ? +(ft[1] / pTrain).toFixed(3) : null,
        ratio_infer: fi && pInfer ? +(fi[1] / pInfer).toFixed(3) : null,
        backends: perBackend,
        repeats,
        load_avg_end: +os.loadavg()[0].toFixed(2),
      }),
    );
  }
  console.log(
    `${'model'.padEnd(20)}${'backend'.padEnd(12)}${'train ms'.padStart(10)}${'infer ms'.padStart(10)}${'torch tr'.padStart(10)}${'torch inf'.padStart(10)}${'r_train'.padStart(9)}${'r_infer'.padStart(9)}${'n'.padStart(4)}`,
  );
  for (const r of rows) console.log(r);
  console.log('(ms per image, medians; r_* = layertune / PyTorch on the same run)');
  for (const j of jsonLines) console.log(j);
  printFooter(startLoad);
}

main();

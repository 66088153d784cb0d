/**
 * One measurement in a fresh process (so backends and wasm heaps never mix): prints one JSON line
 * {backend, model, size, batch, train_ms_per_img, infer_ms_per_img, train_samples, infer_samples}.
 * usage: tsx scripts/bench/run-one.ts --model M --backend wasm|cpu|tensorflow [--size 224] [--batch 16]
 *        [--steps 3] [--infers 3] [--threads 1] [--no-warmup] [--no-fold]
 * --threads N: training gradients data-parallel over N threads (wasm); inference on N workers, a batch each, as
 *   predict --threads N runs it (the time of the first, which starts the workers, is not counted).
 * --no-fold: inference with BatchNorm as separate layers (the default folds it, as predict does).
 */
import * as tf from '@tensorflow/tfjs';
import { buildBenchModel, type BenchModel } from './models';
import { makeStepper } from './step';
import { selectBackend } from '../../src/engine/backend';
import { arg, median } from './stats';

(async () => {
  const backend = arg('backend', 'wasm');
  const model = arg('model', 'mobilenet_v1_0.25') as BenchModel;
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '16'));
  const steps = Number(arg('steps', '3'));
  const infers = Number(arg('infers', '3'));
  const warmup = !process.argv.includes('--no-warmup');
  const threads = Number(arg('threads', '1'));
  await selectBackend(backend); // the product's own selection (wasm gets the training kernels)
  const net = await buildBenchModel(model, size, 5);
  const s = await makeStepper(net, batch, size, 5, threads, !process.argv.includes('--no-fold'));
  // Wall time is what the ratios use; CPU time of this process is reported beside it because the
  // machine is shared, and CPU time is what contention inflates least.
  const cpuMs: number[] = [];
  const time = async (f: () => Promise<unknown>): Promise<number> => {
    const c = process.cpuUsage();
    const t = performance.now();
    await f();
    const d = process.cpuUsage(c);
    cpuMs.push((d.user + d.system) / 1000 / batch);
    return (performance.now() - t) / batch;
  };
  const inferSamples: number[] = [];
  if (infers > 0) {
    if (warmup) await s.infer();
    for (let i = 0; i < infers; i++) {
      const t = performance.now();
      const images = await s.infer();
      inferSamples.push((performance.now() - t) / images);
    }
  }
  const trainSamples: number[] = [];
  if (steps > 0) {
    if (warmup) await s.train(); // first step compiles/allocates; the peer also warms up once
    cpuMs.length = 0;
    // The first step creates the optimizer's slots, so numTensors is comparable only after one step.
    let before = warmup ? tf.memory().numTensors : -1;
    for (let i = 0; i < steps; i++) {
      trainSamples.push(await time(() => s.train()));
      if (before < 0) before = tf.memory().numTensors;
    }
    if (tf.memory().numTensors !== before) throw new Error(`tensor leak: ${before} -> ${tf.memory().numTensors} over ${steps} steps`);
  }
  s.dispose();
  const r = (v: number | null): number | null => (v === null ? null : Math.round(v * 1000) / 1000);
  const line = JSON.stringify({
    backend: tf.getBackend(),
    threads,
    model,
    size,
    batch,
    train_ms_per_img: r(trainSamples.length ? median(trainSamples) : null),
    infer_ms_per_img: r(inferSamples.length ? median(inferSamples) : null),
    train_cpu_ms_per_img: r(trainSamples.length ? median(cpuMs) : null),
    train_samples: trainSamples.map((v) => r(v)),
    infer_samples: inferSamples.map((v) => r(v)),
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20),
  });
  // Exit once the line is flushed (a pipe is async); worker threads, if any, end with the process.
  process.stdout.write(`${line}\n`, () => process.exit(0));
})().catch((e) => {
  console.error(String(e?.stack ?? e));
  process.exit(1);
});

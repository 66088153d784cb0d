/**
 * Per-kernel time of one training step on a backend: where the milliseconds go.
 * usage: tsx scripts/bench/profile.ts [--model mobilenet_v1_0.25] [--size 224] [--batch 16] [--backend wasm] [--infer] [--top]
 *        [--bn batch|frozen]
 * --bn frozen: every BatchNorm normalises with its stored statistics, as `model.batchNorm: frozen` (the e2e bench's job)
 * trains; the default is the peer's training-mode BatchNorm.
 */
import * as tf from '@tensorflow/tfjs';
import { buildBenchModel, type BenchModel } from './models';
import { makeStepper } from './step';
import { selectBackend } from '../../src/engine/backend';
import { arg } from './stats';

(async () => {
  const backend = arg('backend', 'wasm');
  const model = arg('model', 'mobilenet_v1_0.25') as BenchModel;
  const size = Number(arg('size', '224'));
  const batch = Number(arg('batch', '16'));
  await selectBackend(backend); // the product's own selection (wasm gets the training kernels)
  const net = await buildBenchModel(model, size, 5);
  if (arg('bn', 'batch') === 'frozen') {
    const { setBatchNormMode } = await import('../../src/models/batchnorm');
    for (const l of net.layers) setBatchNormMode(l, 'frozen');
  }
  const s = await makeStepper(net, batch, size, 5);
  const infer = process.argv.includes('--infer');
  const run = (): Promise<unknown> => (infer ? s.infer() : s.train());
  await run(); // warm-up
  let t = performance.now();
  await run();
  const plain = performance.now() - t;
  t = performance.now();
  const info = await tf.profile(async () => {
    await run();
  });
  const profiled = performance.now() - t;
  const by = new Map<string, { ms: number; n: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = by.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += ms;
    e.n += 1;
    by.set(k.name, e);
    total += ms;
  }
  console.log(
    `${model} @${size} batch ${batch} on ${backend}: ${infer ? 'inference' : 'training step'} ${plain.toFixed(0)} ms (${(plain / batch).toFixed(1)} ms/img), profiled ${profiled.toFixed(0)} ms, kernels sum ${total.toFixed(0)} ms`,
  );
  for (const [name, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
    console.log(`${name.padEnd(40)} ${e.ms.toFixed(1).padStart(9)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  x${e.n}`);
  }
  if (process.argv.includes('--top')) {
    const rows = info.kernels.map((k) => ({
      name: k.name,
      ms: typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0,
      shapes: k.inputShapes.map((sh) => JSON.stringify(sh)).join(' '),
    }));
    for (const r of rows.sort((a, b) => b.ms - a.ms).slice(0, 30)) console.log(`${r.ms.toFixed(1).padStart(8)} ${r.name} ${r.shapes}`);
  }
  s.dispose();
})();

// Runs in a plain `node` child with no TypeScript loader: everything it touches must come from dist/.
// Prints one JSON line for dist.test.ts.
const path = require('node:path');
const tf = require('@tensorflow/tfjs');
require('@tensorflow/tfjs-backend-wasm');

const dist = path.join(__dirname, '..', '..', 'dist');
const { registerWasmTrainingKernels } = require(path.join(dist, 'engine', 'wasm'));
const { ParallelGradients } = require(path.join(dist, 'engine', 'wasm', 'parallel'));
const { layertuneVersion } = require(path.join(dist, 'export', 'exporter'));
const { classifySource } = require(path.join(dist, 'models', 'classify-source'));

(async () => {
  await tf.setBackend('wasm');
  registerWasmTrainingKernels();
  const input = tf.input({ shape: [8, 8, 3] });
  const h = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(input);
  const out = tf.layers.dense({ units: 2 }).apply(tf.layers.globalAveragePooling2d({}).apply(h));
  const model = tf.model({ inputs: input, outputs: out });
  // threads: 2 starts one worker from dist/engine/wasm/parallel-worker.js
  const pg = await ParallelGradients.create(model, { threads: 2 });
  const x = tf.randomNormal([4, 8, 8, 3]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 0, 1], 'int32'), 2);
  const { loss } = await pg.gradients(x, y);
  await pg.dispose();
  // the working directory is elsewhere (the test sets it), so the default model must come from the package
  const model0 = classifySource('models/mobilenet_v1_0.25_224');
  console.log(JSON.stringify({ loss, threads: 2, version: layertuneVersion(), defaultModel: model0.location, kind: model0.kind }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

#!/usr/bin/env node
// Loads a layertune export with nothing but @tensorflow/tfjs and Node's fs (no layertune import), and
// prints the top-1 label of each image given as a raw preprocessed Float32 file. Used by the tests to
// prove the export is an ordinary tfjs LayersModel.
// usage: node scripts/plain-load-export.js EXPORT_DIR INPUT.f32 N
const fs = require('node:fs');
const path = require('node:path');
const tf = require('@tensorflow/tfjs');

async function main() {
  const [dir, inputFile, n] = process.argv.slice(2);
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8'));
  const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
  const buffers = modelJson.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData }));
  const raw = fs.readFileSync(inputFile);
  const x = tf.tensor4d(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4), [Number(n), meta.inputSize, meta.inputSize, 3]);
  const probs = model.predict(x);
  const top = Array.from(await probs.argMax(1).data());
  console.log(JSON.stringify(top.map((i) => meta.labels[i])));
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});

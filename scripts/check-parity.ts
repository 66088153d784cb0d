/**
 * Parity of imported PyTorch weights with the logits PyTorch computed.
 * Usage: npx tsx scripts/check-parity.ts DIR [--backend wasm|cpu]
 * For every NAME.safetensors with a NAME.io.safetensors beside it (torchvision resnet18/34/50 or
 * mobilenet_v2, any seed, any number of classes; the architecture and class count are inferred from
 * the tensors), loads the model through the public API, runs `input_nhwc` in inference mode and
 * prints one JSON line {"model","maxAbsErr","maxAbsLogit","argmaxAgree","ok"}.
 * Exits 1 if any model fails (or cannot be loaded), 2 on bad usage or an empty DIR.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { checkParity, disposeLoaded, loadBackbone, readSafetensors } from '../src/models';

async function main(argv: string[]): Promise<number> {
  const bi = argv.indexOf('--backend');
  const backend = bi >= 0 ? argv[bi + 1] : 'wasm';
  const dir = argv.find((a, i) => !a.startsWith('--') && (bi < 0 || i !== bi + 1));
  if (!dir || !['wasm', 'cpu'].includes(backend)) {
    process.stderr.write('usage: check-parity DIR [--backend wasm|cpu]\n');
    return 2;
  }
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    process.stderr.write(`${dir}: not a folder\n`);
    return 2;
  }
  const names = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors') && !f.endsWith('.io.safetensors'))
    .map((f) => f.slice(0, -'.safetensors'.length))
    .filter((n) => fs.existsSync(path.join(dir, `${n}.io.safetensors`)))
    .sort();
  if (names.length === 0) {
    process.stderr.write(`${dir}: no NAME.safetensors + NAME.io.safetensors pairs\n`);
    return 2;
  }
  await tf.setBackend(backend);
  let failed = 0;
  for (const name of names) {
    const io = path.join(dir, `${name}.io.safetensors`);
    try {
      // build at the input's own side, so any resolution the reference used works
      const side = readSafetensors(io).tensors.get('input_nhwc')?.shape[1];
      const loaded = await loadBackbone(path.join(dir, `${name}.safetensors`), { inputSize: side });
      try {
        const r = checkParity(name, loaded, io);
        if (!r.ok) failed++;
        process.stdout.write(`${JSON.stringify(r)}\n`);
      } finally {
        disposeLoaded(loaded);
      }
    } catch (e) {
      failed++;
      process.stdout.write(`${JSON.stringify({ model: name, error: (e as Error).message, ok: false })}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);

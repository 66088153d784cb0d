/* One data-parallel inference worker (see inference-pool.ts): its own tfjs backend and model copy. */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { preprocessBatch } from '../data/preprocess';
import type { InferenceRequest, InferenceWorkerInit } from './inference-pool';

type WeightsMsg = { type: 'weights'; id: number; weightSpecs: tf.io.WeightsManifestEntry[]; weightData: ArrayBuffer };

async function setUp(init: InferenceWorkerInit): Promise<tf.LayersModel> {
  if (init.backend === 'wasm') {
    require('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm module failed to initialise');
    // the calling thread runs with layertune's kernels registered (backend.ts): the same kernels give the same outputs
    (require('./training-kernels') as typeof import('./training-kernels')).registerTrainingKernels();
  } else {
    // tfjs's "install the node backend" banner, once per worker: the calling thread already said which backend runs
    const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
    if (cpu) cpu.firstUse = false;
  }
  if (init.backend !== 'wasm' && !(await tf.setBackend(init.backend))) {
    throw new Error(`backend ${init.backend} is not available in a worker thread`);
  }
  await tf.ready();
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: init.modelTopology, weightSpecs: init.weightSpecs, weightData: init.weightData }));
}

(async () => {
  const init = workerData as InferenceWorkerInit;
  let model: tf.LayersModel;
  try {
    model = await setUp(init);
  } catch (e) {
    parentPort!.postMessage({ type: 'error', message: String((e as Error)?.message ?? e) });
    return;
  }
  parentPort!.postMessage({ type: 'ready' });
  parentPort!.on('message', (m: InferenceRequest | WeightsMsg) => {
    try {
      if (m.type === 'weights') {
        const named = tf.io.decodeWeights(m.weightData, m.weightSpecs);
        model.loadWeights(named);
        tf.dispose(Object.values(named));
        parentPort!.postMessage({ type: 'weights-set', id: m.id });
        return;
      }
      const out = tf.tidy(() => {
        const x = 'pixels' in m ? preprocessBatch(m.pixels, m.n, init.size, init.preprocess) : tf.tensor(m.x, m.shape, 'float32');
        const y = model.predict(x) as tf.Tensor;
        // a copy of our own: the cpu backend's dataSync array is the tensor's storage, which must not be transferred
        return new Float32Array(y.reshape([x.shape[0], -1]).dataSync());
      });
      parentPort!.postMessage({ type: 'done', id: m.id, out, numTensors: tf.memory().numTensors }, [out.buffer as ArrayBuffer]);
    } catch (e) {
      parentPort!.postMessage({ type: 'error', id: m.id, message: String((e as Error)?.message ?? e) });
    }
  });
})();

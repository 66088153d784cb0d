/* One data-parallel inference worker (see inference-pool.ts): its own tfjs backend and model copy. */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { InferenceHost, modelFrom, type HostMessage } from './inference-host';
import type { InferenceWorkerInit } from './inference-pool';

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
  return modelFrom(init);
}

(async () => {
  const init = workerData as InferenceWorkerInit;
  const host = new InferenceHost();
  try {
    host.hold(await setUp(init), init);
  } catch (e) {
    parentPort!.postMessage({ type: 'error', message: String((e as Error)?.message ?? e) });
    return;
  }
  parentPort!.postMessage({ type: 'ready' });
  parentPort!.on('message', (m: HostMessage) => void host.answer(m, (reply, transfer) => parentPort!.postMessage(reply, transfer ?? [])));
})();

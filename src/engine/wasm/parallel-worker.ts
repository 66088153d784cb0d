/* One data-parallel gradient worker (see parallel.ts): its own tfjs + wasm backend and model copy. */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from './index';
import { layoutOf, shardLoss } from './parallel';

interface Init {
  topology: object; weightBuf: SharedArrayBuffer; gradBuf: SharedArrayBuffer; shapes: number[][]; trainableIdx: number[];
}
interface Step { type: 'step'; x: Float32Array; xShape: number[]; y: Float32Array; yShape: number[]; weight: number; labelSmoothing: number }

(async () => {
  const init = workerData as Init;
  try {
    await tf.setBackend('wasm');
    registerWasmTrainingKernels();
    const model = await tf.models.modelFromJSON({ modelTopology: init.topology } as tf.io.ModelJSON);
    const vars = model.weights;
    if (vars.length !== init.shapes.length) throw new Error(`model copy has ${vars.length} weights, expected ${init.shapes.length}`);
    const all = layoutOf(init.shapes);
    const trainable = init.trainableIdx.map((i) => vars[i]);
    const tOffsets = layoutOf(init.trainableIdx.map((i) => init.shapes[i])).offsets;
    parentPort!.postMessage({ type: 'ready' });
    parentPort!.on('message', (m: Step) => {
      try {
        const weights = new Float32Array(init.weightBuf);
        tf.tidy(() => {
          vars.forEach((v, i) => v.write(tf.tensor(weights.subarray(all.offsets[i], all.offsets[i] + all.sizes[i]), init.shapes[i])));
        });
        const out = new Float32Array(init.gradBuf);
        const loss = tf.tidy(() => {
          const x = tf.tensor(m.x, m.xShape);
          const y = tf.tensor(m.y, m.yShape);
          const { value, grads } = tf.variableGrads(() => shardLoss(model, x, y, m.labelSmoothing),
            trainable.map((v) => v.read() as tf.Variable));
          trainable.forEach((v, j) => out.set(grads[(v.read() as tf.Variable).name].mul(m.weight).dataSync() as Float32Array, tOffsets[j]));
          return value.dataSync()[0] * m.weight;
        });
        parentPort!.postMessage({ type: 'done', loss });
      } catch (e) {
        parentPort!.postMessage({ type: 'error', message: String((e as Error)?.message ?? e) });
      }
    });
  } catch (e) {
    parentPort!.postMessage({ type: 'error', message: String((e as Error)?.message ?? e) });
  }
})();

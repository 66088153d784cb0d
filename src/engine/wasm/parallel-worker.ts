/*
 * One data-parallel gradient worker (see parallel.ts): its own tfjs + wasm backend and model copy. Between steps it
 * also answers an InferencePool's messages (src/engine/inference-host.ts): the trainer's validation pass runs here
 * instead of on a wasm instance of its own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from './index';
import { layoutOf, seedDropouts, shardLoss, valuesOf, type StepMsg, type WorkerInit } from './parallel';
import { setBatchNormMode } from '../../models/batchnorm';
import { flatLayers } from '../../optim/named';
import { InferenceHost, type HostMessage } from '../inference-host';

(async () => {
  const init = workerData as WorkerInit;
  try {
    await tf.setBackend('wasm');
    // before the model is built: the BatchNorm/ReLU routing to the fused kernels binds at layer call time
    registerWasmTrainingKernels();
    const model = await tf.models.modelFromJSON({ modelTopology: init.topology } as tf.io.ModelJSON);
    for (const layer of flatLayers(model)) {
      const mode = init.bnModes[layer.name];
      if (mode) setBatchNormMode(layer, mode);
    }
    const vars = model.weights;
    if (vars.length !== init.shapes.length) throw new Error(`model copy has ${vars.length} weights, expected ${init.shapes.length}`);
    vars.forEach((v, i) => {
      if (v.originalName !== init.names[i]) throw new Error(`model copy's weight ${i} is ${v.originalName}, expected ${init.names[i]}`);
    });
    const all = layoutOf(init.shapes);
    const trainable = init.trainableIdx.map((i) => vars[i]);
    const tOffsets = layoutOf(init.trainableIdx.map((i) => init.shapes[i])).offsets;
    const stats = init.statIdx.map((i) => vars[i]);
    const sOffsets = layoutOf(init.statIdx.map((i) => init.shapes[i])).offsets;
    parentPort!.postMessage({ type: 'ready' });
    const host = new InferenceHost();
    parentPort!.on('message', (m: StepMsg | HostMessage) => {
      if (InferenceHost.handles(m)) {
        void host.answer(m, (reply, transfer) => parentPort!.postMessage(reply, transfer ?? []));
        return;
      }
      try {
        const weights = new Float32Array(init.weightBuf);
        tf.tidy(() => {
          vars.forEach((v, i) => v.write(tf.tensor(weights.subarray(all.offsets[i], all.offsets[i] + all.sizes[i]), init.shapes[i])));
        });
        seedDropouts(model, m.seeds);
        const out = new Float32Array(init.gradBuf);
        // only the step's variables are differentiated (a frozen phase's are left out); the others' slots go unread
        const active = m.active ?? trainable.map((_, j) => j);
        const [loss, hits] = tf.tidy(() => {
          const x = tf.tensor(m.x, m.xShape);
          const y = tf.tensor(m.y, m.yShape);
          let h: tf.Scalar | undefined;
          const { value, grads } = tf.variableGrads(
            () => {
              const s = shardLoss(model, x, y, init.labelSmoothing);
              h = tf.keep(s.hits);
              return s.loss;
            },
            active.map((j) => trainable[j].read() as tf.Variable),
          );
          for (const j of active) {
            const g = grads[(trainable[j].read() as tf.Variable).name];
            if (g) out.set(valuesOf(g.mul(m.weight)), tOffsets[j]);
          }
          const hitCount = h!.dataSync()[0];
          h!.dispose(); // kept past variableGrads' scope, so this tidy would not release it
          return [value.dataSync()[0] * m.weight, hitCount];
        });
        // the moving statistics this shard's batch-mode BatchNorm layers just updated
        const sb = new Float32Array(init.statsBuf);
        stats.forEach((v, j) => sb.set(valuesOf(v.read()), sOffsets[j]));
        parentPort!.postMessage({ type: 'done', loss, hits, numTensors: tf.memory().numTensors, numBytes: tf.memory().numBytes });
      } catch (e) {
        parentPort!.postMessage({ type: 'error', message: String((e as Error)?.message ?? e) });
      }
    });
  } catch (e) {
    parentPort!.postMessage({ type: 'error', message: String((e as Error)?.message ?? e) });
  }
})();

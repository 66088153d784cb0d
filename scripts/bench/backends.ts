import * as tf from '@tensorflow/tfjs';

/** Activates a backend the way the product does (wasm gets our training kernels). */
export async function useBackend(name: string): Promise<void> {
  if (name === 'wasm') {
    require('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
    const { registerWasmTrainingKernels } = require('../../src/engine/wasm') as typeof import('../../src/engine/wasm');
    registerWasmTrainingKernels();
  } else if (name === 'tensorflow') {
    require('@tensorflow/tfjs-node');
    if (!(await tf.setBackend('tensorflow'))) throw new Error('tfjs-node failed to initialise');
  } else {
    if (!(await tf.setBackend(name))) throw new Error(`backend ${name} failed to initialise`);
  }
  await tf.ready();
}

/** Backends that can run here: wasm and cpu always; tfjs-node only when its native binary installed. */
export function availableBackends(): string[] {
  const out = ['wasm', 'cpu'];
  try {
    require.resolve('@tensorflow/tfjs-node');
    require('@tensorflow/tfjs-node');
    out.unshift('tensorflow');
  } catch {
    // optional dependency absent or its binary failed to load: nothing native to bench
  }
  return out;
}

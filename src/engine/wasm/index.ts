import { getKernel, registerKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { convGradKernelConfigs } from './conv_grads';

export { trainKernels, wasmHeap, KERNELS_WASM_PATH } from './module';

/** Every kernel this package adds to (or replaces on) the `wasm` backend. */
export const wasmTrainingKernelConfigs: readonly KernelConfig[] = [...convGradKernelConfigs];

let registered = false;

/**
 * Registers the training kernels tfjs-backend-wasm lacks. Idempotent. Call after `tf.setBackend('wasm')`
 * has resolved (the kernels attach to that backend's memory lazily, on first use).
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const cfg of wasmTrainingKernelConfigs) {
    // A later tfjs may ship its own; ours only fills gaps unless it is marked as a replacement.
    if (getKernel(cfg.kernelName, 'wasm') === undefined) registerKernel(cfg);
  }
  registered = true;
}

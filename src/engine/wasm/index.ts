import { getKernel, registerGradient, registerKernel, unregisterKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { convGradKernelConfigs, convGradReplacementConfigs } from './conv_grads';
import { fusedGradConfigs, fusedKernelConfigs, routeLayersToFusedOps } from './fused';
import { fusedBatchNormReplacement } from './batchnorm_infer';
import { identityReplacement } from './identity';
import { sliceReplacement, tileReplacement } from './slice';

export { trainKernels, wasmHeap, KERNELS_WASM_PATH } from './module';
export { batchNormTrain, clampRelu } from './fused';

/** Kernels tfjs-backend-wasm lacks, plus our fused training kernels (own names). */
export const wasmTrainingKernelConfigs: readonly KernelConfig[] = [...convGradKernelConfigs, ...fusedKernelConfigs];
/** Stock wasm kernels we replace with faster ones. */
export const wasmReplacementKernelConfigs: readonly KernelConfig[] = [...convGradReplacementConfigs];

let registered = false;

function replaceKernel(cfg: KernelConfig): void {
  if (getKernel(cfg.kernelName, 'wasm') !== undefined) unregisterKernel(cfg.kernelName, 'wasm');
  registerKernel(cfg);
}

/**
 * Makes the wasm backend train fast. Idempotent. Call after `tf.setBackend('wasm')` has resolved and
 * before models are built or their BatchNorm modes set:
 *  - registers the gradient kernels tfjs-backend-wasm lacks, and replaces its slow Conv2DBackpropInput
 *    and FusedBatchNorm (falling back to the stock one for shapes ours does not cover), and makes
 *    Identity share buffers instead of copying them, and does Slice and Tile (rank ≤ 4) in one wasm call;
 *  - registers fused BatchNorm-training and ReLU/ReLU6 kernels with their gradients;
 *  - routes tfjs-layers' BatchNormalization (training), ReLU layer and relu/relu6 activations to them
 *    whenever the active backend is wasm (other backends run the stock code).
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const cfg of wasmTrainingKernelConfigs) {
    if (getKernel(cfg.kernelName, 'wasm') === undefined) registerKernel(cfg);
  }
  for (const cfg of wasmReplacementKernelConfigs) replaceKernel(cfg);
  const stockBn = getKernel('FusedBatchNorm', 'wasm');
  if (stockBn) replaceKernel(fusedBatchNormReplacement(stockBn.kernelFunc));
  const stockIdentity = getKernel('Identity', 'wasm');
  if (stockIdentity) replaceKernel(identityReplacement(stockIdentity.kernelFunc));
  const stockSlice = getKernel('Slice', 'wasm');
  if (stockSlice) replaceKernel(sliceReplacement(stockSlice.kernelFunc));
  const stockTile = getKernel('Tile', 'wasm');
  if (stockTile) replaceKernel(tileReplacement(stockTile.kernelFunc));
  for (const g of fusedGradConfigs) registerGradient(g);
  routeLayersToFusedOps();
  registered = true;
}

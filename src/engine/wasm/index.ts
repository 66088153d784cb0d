import { getKernel, registerGradient, registerKernel, unregisterKernel, type KernelConfig, type KernelFunc } from '@tensorflow/tfjs-core';
import { convGradKernelConfigs, convGradReplacementConfigs } from './conv_grads';
import { fusedGradConfigs, fusedKernelConfigs, routeLayersToFusedOps } from './fused';
import { fusedBatchNormReplacement } from './batchnorm_infer';
import { conv2DReplacement, fusedConv2DReplacement, ltConv2DConfig, ltConv2DGradConfig, routeConvLayers } from './conv_forward';
import { identityReplacement } from './identity';
import { installLeanBackprop } from './lean-backprop';
import { sliceReplacement, tileReplacement } from './slice';

export { trainKernels, wasmHeap, KERNELS_WASM_PATH, KERNELS_FMA_WASM_PATH } from './module';
export { kernelBuild, KERNEL_BUILD_ENV, type KernelBuild } from './kernel-build';
export { batchNormTrain, clampRelu } from './fused';

/** Kernels tfjs-backend-wasm lacks, plus our fused training kernels (own names). */
export const wasmTrainingKernelConfigs: readonly KernelConfig[] = [...convGradKernelConfigs, ...fusedKernelConfigs];
/** Stock wasm kernels we replace with faster ones. */
export const wasmReplacementKernelConfigs: readonly KernelConfig[] = [...convGradReplacementConfigs];
/** Stock wasm kernels we replace for the common cases, handing the rest to the stock kernel. */
const withStockFallback: Record<string, (stock: KernelFunc) => KernelConfig> = {
  FusedBatchNorm: fusedBatchNormReplacement,
  Conv2D: conv2DReplacement,
  FusedConv2D: fusedConv2DReplacement,
  Identity: identityReplacement,
  Slice: sliceReplacement,
  Tile: tileReplacement,
};

let registered = false;

function replaceKernel(cfg: KernelConfig): void {
  if (getKernel(cfg.kernelName, 'wasm') !== undefined) unregisterKernel(cfg.kernelName, 'wasm');
  registerKernel(cfg);
}

/**
 * Makes the wasm backend train fast. Idempotent. Call after `tf.setBackend('wasm')` has resolved and
 * before models are built or their BatchNorm modes set:
 *  - registers the gradient kernels tfjs-backend-wasm lacks and replaces slow stock ones
 *    (Conv2DBackpropInput, MaxPoolGrad; FusedBatchNorm, Identity, Slice, Tile with the stock kernel as
 *    fallback for what ours does not cover); see README.md for why each;
 *  - registers fused BatchNorm-training and ReLU/ReLU6 kernels with their gradients;
 *  - routes tfjs-layers' BatchNormalization (training), ReLU layer and relu/relu6 activations to them
 *    whenever the active backend is wasm (other backends run the stock code);
 *  - registers LtConv2D (our forward conv with per-input lazy gradients) and routes tfjs-layers' Conv2D layers
 *    to it while a gradient is recorded on wasm, so nobody computes the dX of a network's first trainable conv;
 *  - replaces engine.gradients with one that frees the backward pass's tensors as it goes (lean-backprop.ts).
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  for (const cfg of wasmTrainingKernelConfigs) {
    if (getKernel(cfg.kernelName, 'wasm') === undefined) registerKernel(cfg);
  }
  for (const cfg of wasmReplacementKernelConfigs) replaceKernel(cfg);
  const stockFusedConv = getKernel('FusedConv2D', 'wasm');
  for (const [name, make] of Object.entries(withStockFallback)) {
    const stock = getKernel(name, 'wasm');
    if (stock) replaceKernel(make(stock.kernelFunc));
  }
  for (const g of fusedGradConfigs) registerGradient(g);
  routeLayersToFusedOps();
  if (stockFusedConv) {
    replaceKernel(ltConv2DConfig(stockFusedConv.kernelFunc));
    registerGradient(ltConv2DGradConfig);
    routeConvLayers();
  }
  installLeanBackprop();
  registered = true;
}

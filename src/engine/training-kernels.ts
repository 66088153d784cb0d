/**
 * Bridge to the WASM gradient kernels (src/engine/wasm). The wasm backend ships without
 * Conv2DBackpropFilter and the depthwise backprop kernels; training on it needs them registered.
 */
export async function registerTrainingKernels(): Promise<void> {
  let mod: { registerWasmTrainingKernels?: () => void | Promise<void> };
  try {
    mod = require('./wasm');
  } catch {
    return; // kernels not built yet: inference still works, training will name the missing kernel
  }
  await mod.registerWasmTrainingKernels?.();
}

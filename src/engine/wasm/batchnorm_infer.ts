import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, trainKernels, withScratch } from './module';

/**
 * FusedBatchNorm (given statistics: inference, and frozen-BN training) for the wasm backend. tfjs-wasm's
 * own kernel was 44% of a MobileNet v1 inference pass; this is one SIMD pass. Shapes it does not cover
 * (statistics that are not one value per last-axis channel) go to the stock kernel.
 */
export function fusedBatchNormReplacement(stock: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const b = args.backend as BackendWasm;
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, TensorInfo | undefined>;
    const eps = (args.attrs as { varianceEpsilon: number }).varianceEpsilon;
    const C = x!.shape[x!.shape.length - 1];
    const perChannel = (t: TensorInfo | undefined): boolean =>
      t === undefined || t === null || (t.dtype === 'float32' && t.shape.reduce((a, v) => a * v, 1) === C && t.shape[t.shape.length - 1] === C);
    if (x!.dtype !== 'float32' || ![mean, variance, offset, scale].every(perChannel) || mean == null || variance == null) {
      return stock(args);
    }
    const y = b.makeOutput(x!.shape, 'float32');
    const ptr = (t: TensorInfo | undefined | null): number => (t == null ? 0 : offsetOf(b, t.dataId));
    withScratch(b, 8 * C, (tmp) =>
      trainKernels(b).bn_infer(
        ptr(x),
        ptr(mean),
        ptr(variance),
        ptr(offset),
        ptr(scale),
        ptr(y),
        tmp,
        x!.shape.reduce((a, v) => a * v, 1) / C,
        C,
        eps,
        Infinity,
        0,
      ),
    );
    return y;
  };
  return { kernelName: 'FusedBatchNorm', backendName: 'wasm', kernelFunc };
}

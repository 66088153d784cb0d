import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, trainKernels, withScratch } from './module';
import { winogradConv3x3, type WinogradActivation } from './winograd';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;

const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2 };

/** Output pixels per tile: the tile's im2col rows (tile × M floats) stay within ~256 KB of L2. */
export function tilePixels(m: number): number {
  return Math.max(16, Math.min(256, Math.floor(65536 / m) & ~3));
}

/**
 * FusedConv2D (every tfjs-layers Conv2D, forward) as our cache-blocked GEMM (csrc conv2d_fwd) instead of XNNPACK.
 * Measured per layer at batch 16, 224 px, one thread (ms, ours vs XNNPACK): ResNet-18 3x3 56x56x64 77 vs 101,
 * 7x7x512 86 vs 124, 1x1 downsample 4.6-5.0 vs 7.2-8.2; MobileNet v1 0.25 pointwise 1.1-2.8 vs 1.6-3.3 (even
 * 8 input channels: 1.5 vs 2.6). XNNPACK keeps the 3-channel stems (ResNet's 7x7: 108 vs our 123: an im2col
 * of 3-float runs) and whatever we do not cover (NCHW, dilation, prelu/leakyrelu/elu/sigmoid epilogues).
 */
export function fusedConv2DReplacement(stock: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const b = args.backend as BackendWasm;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = args.attrs as unknown as {
      strides: [number, number] | number; pad: Pad; dataFormat?: string; dilations?: [number, number] | number;
      dimRoundingMode?: 'floor' | 'round' | 'ceil'; activation?: string;
    };
    const act = ACTIVATIONS[activation ?? 'linear'];
    const d = dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
    const fs = filter!.shape as [number, number, number, number];
    const co = fs[3];
    const biasOk = bias == null || (bias.dtype === 'float32' && bias.shape.reduce((a, v) => a * v, 1) === co);
    if (act === undefined || preluActivationWeights != null || x!.dtype !== 'float32' || filter!.dtype !== 'float32' || !biasOk ||
      (dataFormat !== undefined && dataFormat !== 'NHWC') || d[0] !== 1 || d[1] !== 1) {
      return stock(args);
    }
    // 3x3 stride-1 'same' (most of ResNet): Winograd when it beats the GEMM (winogradWorthIt; 3-channel inputs too)
    const wino = winogradConv3x3(b, x!, filter!, bias ?? null, (activation ?? 'linear') as WinogradActivation, { strides, pad, dilations, dataFormat });
    if (wino) return wino;
    if (fs[2] < 4) return stock(args);
    const ci = backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], fs, strides, 1, pad,
      dimRoundingMode, false, 'channelsLast');
    const y = b.makeOutput([ci.batchSize, ci.outHeight, ci.outWidth, co], 'float32');
    const m = fs[0] * fs[1] * fs[2];
    const direct = fs[0] === 1 && fs[1] === 1 && ci.strideHeight === 1 && ci.strideWidth === 1 && ci.padInfo.top === 0 && ci.padInfo.left === 0;
    const pt = tilePixels(m);
    const floats = m * ((co + 7) & ~7) + (direct ? 0 : pt * m);
    withScratch(b, 4 * floats, (s) => trainKernels(b).conv2d_fwd(offsetOf(b, x!.dataId), offsetOf(b, filter!.dataId),
      bias == null ? 0 : offsetOf(b, bias.dataId), offsetOf(b, y.dataId), s, ci.batchSize, ci.inHeight, ci.inWidth,
      ci.inChannels, ci.outHeight, ci.outWidth, co, fs[0], fs[1], ci.strideHeight, ci.strideWidth, ci.padInfo.top,
      ci.padInfo.left, act, pt));
    return y;
  };
  return { kernelName: 'FusedConv2D', backendName: 'wasm', kernelFunc };
}

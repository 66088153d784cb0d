import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BPF_PIXEL_TILE, offsetOf, trainKernels, withScratch } from './module';

type Pad = 'valid' | 'same' | number | backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

function requireFloat32(kernel: string, ...ts: TensorInfo[]): void {
  for (const t of ts) {
    if (t.dtype !== 'float32') throw new Error(`${kernel} on wasm supports float32 only, got ${t.dtype}`);
  }
}

function requireNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC') {
    throw new Error(`${kernel} on wasm supports NHWC only, got ${String(dataFormat)}`);
  }
}

function requireUnitDilation(kernel: string, dilations: unknown): void {
  if (dilations === undefined) return;
  const d = typeof dilations === 'number' ? [dilations, dilations] : (dilations as number[]);
  if (d.some((v) => v !== 1)) throw new Error(`${kernel} on wasm supports dilation 1 only`);
}

/** dW of a regular conv2d. Inputs {x, dy}; attrs as in tfjs-core's conv2DBackpropFilter op. */
export const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number; pad: Pad; dataFormat?: string; dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  };
  requireFloat32('Conv2DBackpropFilter', x, dy);
  requireNHWC('Conv2DBackpropFilter', dataFormat);
  const ci = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1,
    pad, dimRoundingMode, false, 'channelsLast');
  const out = b.makeOutput(filterShape, 'float32');
  const m4 = (filterShape[0] * filterShape[1] * filterShape[2] + 3) & ~3;
  withScratch(b, 4 * m4 * BPF_PIXEL_TILE, (pack) =>
    trainKernels(b).conv2d_bp_filter(offsetOf(b, x.dataId), offsetOf(b, dy.dataId), offsetOf(b, out.dataId), pack,
      ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outHeight, ci.outWidth, ci.outChannels,
      ci.filterHeight, ci.filterWidth, ci.strideHeight, ci.strideWidth, ci.padInfo.top, ci.padInfo.left));
  return out;
};

/** dW of a depthwise conv2d. Inputs {x, dy}; filterShape [KH, KW, C, CM]. */
export const depthwiseConv2dNativeBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number; pad: Pad; dilations?: unknown; dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  };
  requireFloat32('DepthwiseConv2dNativeBackpropFilter', x, dy);
  requireUnitDilation('DepthwiseConv2dNativeBackpropFilter', dilations);
  const ci = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1,
    pad, dimRoundingMode, true, 'channelsLast');
  const out = b.makeOutput(filterShape, 'float32');
  trainKernels(b).dw_bp_filter(offsetOf(b, x.dataId), offsetOf(b, dy.dataId), offsetOf(b, out.dataId),
    ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outHeight, ci.outWidth, filterShape[3],
    ci.filterHeight, ci.filterWidth, ci.strideHeight, ci.strideWidth, ci.padInfo.top, ci.padInfo.left);
  return out;
};

/** dX of a depthwise conv2d. Inputs {dy, filter}; attrs.inputShape is x's shape. */
export const depthwiseConv2dNativeBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number; pad: Pad; dilations?: unknown; dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  };
  requireFloat32('DepthwiseConv2dNativeBackpropInput', dy, filter);
  requireUnitDilation('DepthwiseConv2dNativeBackpropInput', dilations);
  const fs = filter.shape as [number, number, number, number];
  const ci = backend_util.computeConv2DInfo(inputShape, fs, strides, 1, pad, dimRoundingMode, true, 'channelsLast');
  const out = b.makeOutput(inputShape, 'float32');
  trainKernels(b).dw_bp_input(offsetOf(b, dy.dataId), offsetOf(b, filter.dataId), offsetOf(b, out.dataId),
    ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outHeight, ci.outWidth, fs[3],
    ci.filterHeight, ci.filterWidth, ci.strideHeight, ci.strideWidth, ci.padInfo.top, ci.padInfo.left);
  return out;
};

/**
 * dX of a regular conv2d. Replaces tfjs-wasm's own Conv2DBackpropInput, a scalar loop that was 19% of a
 * MobileNet v1 training step; ours is a cache-blocked SIMD GEMM + col2im (see csrc).
 */
export const conv2DBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number; pad: Pad; dataFormat?: string; dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  };
  requireFloat32('Conv2DBackpropInput', dy, filter);
  requireNHWC('Conv2DBackpropInput', dataFormat);
  const fs = filter.shape as [number, number, number, number];
  const ci = backend_util.computeConv2DInfo(inputShape, fs, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const out = b.makeOutput(inputShape, 'float32');
  const m8 = (fs[0] * fs[1] * fs[2] + 7) & ~7;
  withScratch(b, 4 * m8 * (fs[3] + BPF_PIXEL_TILE), (scratch) =>
    trainKernels(b).conv2d_bp_input(offsetOf(b, dy.dataId), offsetOf(b, filter.dataId), offsetOf(b, out.dataId), scratch,
      ci.batchSize, ci.inHeight, ci.inWidth, ci.inChannels, ci.outHeight, ci.outWidth, ci.outChannels,
      ci.filterHeight, ci.filterWidth, ci.strideHeight, ci.strideWidth, ci.padInfo.top, ci.padInfo.left));
  return out;
};

export const convGradKernelConfigs: KernelConfig[] = [
  { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter },
  { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: depthwiseConv2dNativeBackpropFilter },
  { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: depthwiseConv2dNativeBackpropInput },
];

/** Kernels tfjs-wasm has, but too slowly for training; registering these replaces the stock ones. */
export const convGradReplacementConfigs: KernelConfig[] = [
  { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2DBackpropInput },
];


import { backend_util, getKernel, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BPF_PIXEL_TILE, offsetOf, trainKernels, withScratch } from './module';
import { winogradConv3x3BackpropFilter, winogradConv3x3BackpropInput } from './winograd';

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
    strides: [number, number] | number;
    pad: Pad;
    dataFormat?: string;
    dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  };
  requireFloat32('Conv2DBackpropFilter', x, dy);
  requireNHWC('Conv2DBackpropFilter', dataFormat);
  const wino = winogradConv3x3BackpropFilter(b, x, dy, filterShape, { strides, pad, dataFormat });
  if (wino) return wino;
  const ci = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const out = b.makeOutput(filterShape, 'float32');
  const m4 = (filterShape[0] * filterShape[1] * filterShape[2] + 3) & ~3;
  // im2col tile + the dy tile in 8-wide panels (csrc conv2d_bp_filter)
  withScratch(b, 4 * (m4 + ((filterShape[3] + 7) & ~7)) * BPF_PIXEL_TILE, (pack) =>
    trainKernels(b).conv2d_bp_filter(
      offsetOf(b, x.dataId),
      offsetOf(b, dy.dataId),
      offsetOf(b, out.dataId),
      pack,
      ci.batchSize,
      ci.inHeight,
      ci.inWidth,
      ci.inChannels,
      ci.outHeight,
      ci.outWidth,
      ci.outChannels,
      ci.filterHeight,
      ci.filterWidth,
      ci.strideHeight,
      ci.strideWidth,
      ci.padInfo.top,
      ci.padInfo.left,
    ),
  );
  return out;
};

/** dW of a depthwise conv2d. Inputs {x, dy}; filterShape [KH, KW, C, CM]. */
export const depthwiseConv2dNativeBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: Pad;
    dilations?: unknown;
    dimRoundingMode?: Rounding;
    filterShape: [number, number, number, number];
  };
  requireFloat32('DepthwiseConv2dNativeBackpropFilter', x, dy);
  requireUnitDilation('DepthwiseConv2dNativeBackpropFilter', dilations);
  const ci = backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, true, 'channelsLast');
  const out = b.makeOutput(filterShape, 'float32');
  // Register-resident taps win where rows are short (C <= 16: 5x on MobileNet's 112x112x8 layer); for wider
  // rows the per-4-channel rescans cost more than the scatter loop's dW traffic (measured).
  if (filterShape[0] === 3 && filterShape[1] === 3 && filterShape[3] === 1 && ci.inChannels % 4 === 0 && ci.inChannels <= 16) {
    trainKernels(b).dw_bp_filter_3x3(
      offsetOf(b, x.dataId),
      offsetOf(b, dy.dataId),
      offsetOf(b, out.dataId),
      ci.batchSize,
      ci.inHeight,
      ci.inWidth,
      ci.inChannels,
      ci.outHeight,
      ci.outWidth,
      ci.strideHeight,
      ci.strideWidth,
      ci.padInfo.top,
      ci.padInfo.left,
    );
    return out;
  }
  trainKernels(b).dw_bp_filter(
    offsetOf(b, x.dataId),
    offsetOf(b, dy.dataId),
    offsetOf(b, out.dataId),
    ci.batchSize,
    ci.inHeight,
    ci.inWidth,
    ci.inChannels,
    ci.outHeight,
    ci.outWidth,
    filterShape[3],
    ci.filterHeight,
    ci.filterWidth,
    ci.strideHeight,
    ci.strideWidth,
    ci.padInfo.top,
    ci.padInfo.left,
  );
  return out;
};

/**
 * Stride 1, multiplier 1: dX is the forward depthwise convolution of dy with the filter rotated 180°
 * and the complementary padding (KH-1-pad, so pads must not exceed KH-1), which tfjs-wasm runs through
 * XNNPACK (~3x our scatter loop on MobileNet's 112x112x8 layer).
 */
function viaForwardDepthwise(b: BackendWasm, dy: TensorInfo, filter: TensorInfo, ci: backend_util.Conv2DInfo, forward: KernelFunc): TensorInfo {
  const [KH, KW, C] = filter.shape as [number, number, number, number];
  const rot = b.makeOutput([KH, KW, C, 1], 'float32');
  const src = b.typedArrayFromHeap(filter) as Float32Array; // views: taken after the last allocation
  const dst = b.typedArrayFromHeap(rot) as Float32Array;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      dst.set(src.subarray(((KH - 1 - kh) * KW + (KW - 1 - kw)) * C, ((KH - 1 - kh) * KW + (KW - 1 - kw) + 1) * C), (kh * KW + kw) * C);
    }
  }
  const { top, bottom, left, right } = ci.padInfo;
  const padT = KH - 1 - top,
    padB = KH - 1 - bottom,
    padL = KW - 1 - left,
    padR = KW - 1 - right;
  try {
    return forward({
      inputs: { x: dy, filter: rot },
      backend: b,
      attrs: {
        strides: 1,
        dilations: 1,
        pad: [
          [0, 0],
          [padT, padB],
          [padL, padR],
          [0, 0],
        ],
      } as unknown as NamedAttrMap,
    }) as TensorInfo;
  } finally {
    b.disposeData(rot.dataId);
  }
}

/** dX of a depthwise conv2d. Inputs {dy, filter}; attrs.inputShape is x's shape. */
export const depthwiseConv2dNativeBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dilations, dimRoundingMode, inputShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: Pad;
    dilations?: unknown;
    dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  };
  requireFloat32('DepthwiseConv2dNativeBackpropInput', dy, filter);
  requireUnitDilation('DepthwiseConv2dNativeBackpropInput', dilations);
  const fs = filter.shape as [number, number, number, number];
  const ci = backend_util.computeConv2DInfo(inputShape, fs, strides, 1, pad, dimRoundingMode, true, 'channelsLast');
  const forward = getKernel('DepthwiseConv2dNative', 'wasm');
  const { top, bottom, left, right } = ci.padInfo;
  const padsFit = Math.max(top, bottom) <= fs[0] - 1 && Math.max(left, right) <= fs[1] - 1;
  if (fs[3] === 1 && ci.strideHeight === 1 && ci.strideWidth === 1 && padsFit && forward) {
    return viaForwardDepthwise(b, dy, filter, ci, forward.kernelFunc);
  }
  const out = b.makeOutput(inputShape, 'float32');
  trainKernels(b).dw_bp_input(
    offsetOf(b, dy.dataId),
    offsetOf(b, filter.dataId),
    offsetOf(b, out.dataId),
    ci.batchSize,
    ci.inHeight,
    ci.inWidth,
    ci.inChannels,
    ci.outHeight,
    ci.outWidth,
    fs[3],
    ci.filterHeight,
    ci.filterWidth,
    ci.strideHeight,
    ci.strideWidth,
    ci.padInfo.top,
    ci.padInfo.left,
  );
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
    strides: [number, number] | number;
    pad: Pad;
    dataFormat?: string;
    dimRoundingMode?: Rounding;
    inputShape: [number, number, number, number];
  };
  requireFloat32('Conv2DBackpropInput', dy, filter);
  requireNHWC('Conv2DBackpropInput', dataFormat);
  // 3x3 stride-1 'same' (most of ResNet): Winograd, 2.5-3.8x fewer multiplications' worth of time
  const wino = winogradConv3x3BackpropInput(b, dy, filter, inputShape, { strides, pad, dataFormat });
  if (wino) return wino;
  const fs = filter.shape as [number, number, number, number];
  const ci = backend_util.computeConv2DInfo(inputShape, fs, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const out = b.makeOutput(inputShape, 'float32');
  const m8 = (fs[0] * fs[1] * fs[2] + 7) & ~7;
  withScratch(b, 4 * m8 * (fs[3] + BPF_PIXEL_TILE), (scratch) =>
    trainKernels(b).conv2d_bp_input(
      offsetOf(b, dy.dataId),
      offsetOf(b, filter.dataId),
      offsetOf(b, out.dataId),
      scratch,
      ci.batchSize,
      ci.inHeight,
      ci.inWidth,
      ci.inChannels,
      ci.outHeight,
      ci.outWidth,
      ci.outChannels,
      ci.filterHeight,
      ci.filterWidth,
      ci.strideHeight,
      ci.strideWidth,
      ci.padInfo.top,
      ci.padInfo.left,
    ),
  );
  return out;
};

/**
 * MaxPool dX. Replaces tfjs-wasm's scalar loop (~0.5 s on ResNet's 16x112x112x64 stem pool); the same
 * first-maximum rule as the cpu backend.
 */
export const maxPoolGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: [number, number] | number;
    strides: [number, number] | number;
    pad: Pad;
    dimRoundingMode?: Rounding;
  };
  requireFloat32('MaxPoolGrad', dy, input);
  const ci = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad as 'valid' | 'same' | number,
    dimRoundingMode,
  );
  const out = b.makeOutput(input.shape, 'float32');
  trainKernels(b).maxpool_bp(
    offsetOf(b, input.dataId),
    offsetOf(b, dy.dataId),
    offsetOf(b, out.dataId),
    ci.batchSize,
    ci.inHeight,
    ci.inWidth,
    ci.inChannels,
    ci.outHeight,
    ci.outWidth,
    ci.effectiveFilterHeight,
    ci.effectiveFilterWidth,
    ci.strideHeight,
    ci.strideWidth,
    ci.padInfo.top,
    ci.padInfo.left,
  );
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
  { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad },
];

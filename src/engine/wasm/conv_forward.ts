import * as tf from '@tensorflow/tfjs';
import { backend_util, type GradConfig, type KernelConfig, type KernelFunc, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { CLAMP_GRAD } from './fused';
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
 * 8 input channels: 1.5 vs 2.6). Fewer than 4 input channels (stems; the im2col copies one filter row, KW*CI floats,
 * at a time): ours from 32 output channels on, XNNPACK below (stride 2, valid, batch 16, medians of 7, ms ours vs
 * XNNPACK: 7x7x3->64 (ResNet) 85-87 vs 108, 7x7x3->32 77 vs 101 and 5x5x3->32 43 vs 53 (loaded machine),
 * 3x3x3->64 28 vs 34 (loaded), 3x3x3->32 (MobileNet v2) 10.8-16.5 vs 10.9-16.1: a tie; but 3x3x3->24 9.2 vs 8.3,
 * ->16 7.2 vs 5.9, ->8 (MobileNet v1 0.25) 4.3-5.4 vs 3.4-3.9, 5x5x3->8 10.2 vs 7.6, 7x7x3->16 26.8 vs 28.0).
 * XNNPACK also keeps whatever we do not cover (NCHW, dilation, prelu/leakyrelu/elu/sigmoid epilogues).
 */
export function fusedConv2DReplacement(stock: KernelFunc): KernelConfig {
  return convReplacement('FusedConv2D', stock);
}

/**
 * Plain Conv2D (tf.conv2d: no bias or activation) the same way. tfjs-layers emits it while training a conv layer
 * with a non-linear activation outside our routing below (tfjs-core's fused.conv2d unfuses when a gradient is
 * recorded and the activation is not linear) and for anything calling tf.conv2d directly.
 */
export function conv2DReplacement(stock: KernelFunc): KernelConfig {
  return convReplacement('Conv2D', stock);
}

function convReplacement(kernelName: string, stock: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const b = args.backend as BackendWasm;
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
    const { strides, pad, dataFormat, dilations, dimRoundingMode, activation } = args.attrs as unknown as {
      strides: [number, number] | number;
      pad: Pad;
      dataFormat?: string;
      dilations?: [number, number] | number;
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      activation?: string;
    };
    const act = ACTIVATIONS[activation ?? 'linear'];
    const d = dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
    const fs = filter!.shape as [number, number, number, number];
    const co = fs[3];
    const biasOk = bias == null || (bias.dtype === 'float32' && bias.shape.reduce((a, v) => a * v, 1) === co);
    if (
      act === undefined ||
      preluActivationWeights != null ||
      x!.dtype !== 'float32' ||
      filter!.dtype !== 'float32' ||
      !biasOk ||
      (dataFormat !== undefined && dataFormat !== 'NHWC') ||
      d[0] !== 1 ||
      d[1] !== 1
    ) {
      return stock(args);
    }
    // 3x3 stride-1 'same' (most of ResNet): Winograd when it beats the GEMM (winogradWorthIt; 3-channel inputs too)
    const wino = winogradConv3x3(b, x!, filter!, bias ?? null, (activation ?? 'linear') as WinogradActivation, { strides, pad, dilations, dataFormat });
    if (wino) return wino;
    if (fs[2] < 4 && co < 32) return stock(args);
    const ci = backend_util.computeConv2DInfo(x!.shape as [number, number, number, number], fs, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    const y = b.makeOutput([ci.batchSize, ci.outHeight, ci.outWidth, co], 'float32');
    const m = fs[0] * fs[1] * fs[2];
    const direct = fs[0] === 1 && fs[1] === 1 && ci.strideHeight === 1 && ci.strideWidth === 1 && ci.padInfo.top === 0 && ci.padInfo.left === 0;
    const pt = tilePixels(m);
    const floats = m * ((co + 7) & ~7) + (direct ? 0 : pt * m);
    withScratch(b, 4 * floats, (s) =>
      trainKernels(b).conv2d_fwd(
        offsetOf(b, x!.dataId),
        offsetOf(b, filter!.dataId),
        bias == null ? 0 : offsetOf(b, bias.dataId),
        offsetOf(b, y.dataId),
        s,
        ci.batchSize,
        ci.inHeight,
        ci.inWidth,
        ci.inChannels,
        ci.outHeight,
        ci.outWidth,
        co,
        fs[0],
        fs[1],
        ci.strideHeight,
        ci.strideWidth,
        ci.padInfo.top,
        ci.padInfo.left,
        act,
        pt,
      ),
    );
    return y;
  };
  return { kernelName, backendName: 'wasm', kernelFunc };
}

/* ------------------------------ training: a conv whose gradients are lazy ------------------------------ */

/**
 * tfjs-core's fused.conv2d records its gradient with customGrad, which computes dX, dW and db together whenever any
 * of them is needed: the input gradient of a network's first trainable conv is computed and thrown away. On ResNet-18
 * (batch 16, 224) that is the 7x7 stem's dX, [16,112,112,64] → [16,230,230,3], 91 ms of a 2.38 s step; with a
 * frozen prefix it is the first trainable layer's. LtConv2D is FusedConv2D under our own name (same kernel, same
 * stock fallback) with a registered gradient that gives each input its own closure, so the tape asks only for the
 * gradients on a path to a trainable variable. While a gradient is recorded on wasm, tfjs-layers' Conv2D layers run
 * it (routeConvLayers) with their bias and relu/relu6 fused into the epilogue (tfjs unfuses those when taping).
 */
export const LT_CONV = 'LtConv2D';

export function ltConv2DConfig(stockFused: KernelFunc): KernelConfig {
  return { ...fusedConv2DReplacement(stockFused), kernelName: LT_CONV };
}

interface LtConvAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  activation: WinogradActivation;
}

export const ltConv2DGradConfig: GradConfig = {
  kernelName: LT_CONV,
  inputsToSave: ['x', 'filter'],
  outputsToSave: [true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const dy = (Array.isArray(dys) ? dys[0] : dys) as tf.Tensor4D;
    const [x, filter, y] = saved as tf.Tensor4D[];
    const { strides, pad, activation } = attrs as unknown as LtConvAttrs;
    // each closure runs in its own tidy: the activation's mask is recomputed per input asked for (one cheap pass)
    // rather than computed here, where it would live until the whole backward pass ends
    const dz = (): tf.Tensor4D =>
      activation === 'linear'
        ? dy
        : (tf.engine().runKernel(CLAMP_GRAD, { dy, x: y }, { hi: activation === 'relu6' ? 6 : Infinity, hiInclusive: false }) as tf.Tensor4D);
    const conv = { strides, pad, dataFormat: 'NHWC' };
    return {
      x: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: dz(), filter }, { ...conv, inputShape: x.shape }) as tf.Tensor,
      filter: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy: dz() }, { ...conv, filterShape: filter.shape }) as tf.Tensor,
      bias: () => tf.sum(dz(), [0, 1, 2]),
    };
  },
};

type Ctor = { prototype: Record<string | symbol, unknown> };
const PATCHED = Symbol.for('layertune.wasmConv');

interface ConvLayer {
  rank: number;
  dataFormat: string;
  strides: number[];
  padding: string;
  dilationRate: number[];
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  activation: { getClassName(): string };
}

/**
 * tfjs-layers' Conv2D layers run LtConv2D while a gradient is being recorded on wasm (float32, channelsLast, rank-4
 * input, dilation 1, activation linear/relu/relu6); anything else, and every call with no tape (inference,
 * evaluation), runs the stock code, i.e. tfjs's fused.conv2d on our FusedConv2D kernel.
 */
export function routeConvLayers(): void {
  const map = tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [Ctor, unknown]>;
  const proto = map.Conv2D?.[0].prototype;
  if (!proto) throw new Error('tfjs-layers has no registered class Conv2D');
  if (proto[PATCHED]) return;
  const stockCall = proto.call as (this: ConvLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: unknown) => tf.Tensor;
  proto.call = function (this: ConvLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: unknown): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const activation = this.activation?.getClassName();
    if (
      tf.getBackend() !== 'wasm' ||
      tf.engine().state.gradientDepth === 0 ||
      (Array.isArray(inputs) && inputs.length !== 1) ||
      x.dtype !== 'float32' ||
      x.rank !== 4 ||
      this.rank !== 2 ||
      this.dataFormat !== 'channelsLast' ||
      (this.padding !== 'same' && this.padding !== 'valid') ||
      this.dilationRate.some((d) => d !== 1) ||
      (activation !== 'linear' && activation !== 'relu' && activation !== 'relu6')
    ) {
      return stockCall.call(this, inputs, kwargs);
    }
    return tf.tidy(() => {
      const conv: tf.NamedTensorMap = { x, filter: this.kernel.read() };
      if (this.bias != null) conv.bias = this.bias.read();
      return tf.engine().runKernel(LT_CONV, conv, {
        strides: [this.strides[0], this.strides[1]],
        pad: this.padding,
        dataFormat: 'NHWC',
        dilations: [1, 1],
        activation,
      } as unknown as NamedAttrMap) as tf.Tensor;
    });
  };
  proto[PATCHED] = true;
}

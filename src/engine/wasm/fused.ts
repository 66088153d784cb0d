import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, trainKernels, withScratch } from './module';

/*
 * Fused training ops for the wasm backend. The stock path of a BatchNorm layer in training mode is
 * moments + FusedBatchNorm forward and ~25 generic kernels backward (Tile, Sum, Mul, Sub, Cast...),
 * each a full pass over the activation; ReLU6 is Relu + Minimum forward and six passes backward. On a
 * MobileNet v1 step those passes were ~60% of the time. Here each is one kernel forward and one
 * backward, registered under our own kernel names (with their own gradients), so the stock kernels
 * and gradients stay untouched for every other backend.
 */

export const BN_TRAIN = 'LtBatchNormTrain';
export const BN_TRAIN_GRAD = 'LtBatchNormTrainGrad';
export const BN_FROZEN = 'LtBatchNormFrozen';
export const BN_FROZEN_GRAD = 'LtBatchNormFrozenGrad';
export const CLAMP = 'LtClamp';
export const CLAMP_GRAD = 'LtClampGrad';

const lastDim = (t: TensorInfo): number => t.shape[t.shape.length - 1];

/**
 * A ReLU applied inside a BatchNorm kernel (csrc/train_kernels.c act_clamp/act_mask): act 0 none; 1 clamp to
 * [0, hi] with the gradient where 0 < y < hi (the relu and relu6 activations); 2 the same clamp with the gradient
 * where 0 < y <= hi (tf.layers.reLU, a relu then a clip at maxValue).
 */
export interface FusedRelu {
  hi: number;
  act: 0 | 1 | 2;
}
const NO_RELU: FusedRelu = { hi: Infinity, act: 0 };
const reluOf = (attrs: NamedAttrMap | undefined): FusedRelu => {
  const a = attrs as Partial<FusedRelu> | undefined;
  return { hi: a?.hi ?? Infinity, act: a?.act ?? 0 };
};
const sizeOf = (t: TensorInfo): number => t.shape.reduce((a, b) => a * b, 1);

/** [y, mean, variance, invstd] = batch-statistics BatchNorm over every axis but the last. */
const bnTrain: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const eps = (attrs as { epsilon: number }).epsilon;
  const relu = reluOf(attrs);
  const C = lastDim(x);
  const P = sizeOf(x) / C;
  const y = b.makeOutput(x.shape, 'float32');
  const mean = b.makeOutput([C], 'float32');
  const variance = b.makeOutput([C], 'float32');
  const invstd = b.makeOutput([C], 'float32');
  withScratch(b, 24 * C, (s) =>
    trainKernels(b).bn_train_fwd(
      offsetOf(b, x.dataId),
      offsetOf(b, gamma.dataId),
      offsetOf(b, beta.dataId),
      offsetOf(b, y.dataId),
      offsetOf(b, mean.dataId),
      offsetOf(b, variance.dataId),
      offsetOf(b, invstd.dataId),
      s,
      P,
      C,
      eps,
      relu.hi,
      relu.act,
    ),
  );
  return [y, mean, variance, invstd];
};

/** [dx, dgamma, dbeta] through the batch statistics (and the fused ReLU's mask, when there is one). */
const bnTrainGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, x, gamma, beta, mean, invstd } = inputs as Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'invstd', TensorInfo>;
  const relu = reluOf(attrs);
  const C = lastDim(x);
  const P = sizeOf(x) / C;
  const dx = b.makeOutput(x.shape, 'float32');
  const dgamma = b.makeOutput([C], 'float32');
  const dbeta = b.makeOutput([C], 'float32');
  withScratch(b, 32 * C, (s) =>
    trainKernels(b).bn_train_bwd(
      offsetOf(b, dy.dataId),
      offsetOf(b, x.dataId),
      offsetOf(b, gamma.dataId),
      offsetOf(b, beta.dataId),
      offsetOf(b, mean.dataId),
      offsetOf(b, invstd.dataId),
      offsetOf(b, dx.dataId),
      offsetOf(b, dgamma.dataId),
      offsetOf(b, dbeta.dataId),
      s,
      P,
      C,
      relu.hi,
      relu.act,
    ),
  );
  return [dx, dgamma, dbeta];
};

const bnTrainGradConfig: GradConfig = {
  kernelName: BN_TRAIN,
  // beta: a fused ReLU's mask is taken from y, recomputed from x; y itself (the clamp's input) is never stored
  inputsToSave: ['x', 'gamma', 'beta'],
  outputsToSave: [false, true, false, true],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [x, gamma, beta, mean, invstd] = saved;
    // One kernel yields all three, so run it here, not lazily: tfjs calls each input's closure inside its
    // own tidy, which would dispose the siblings. Here we are in the gradients' outer tidy, which still
    // releases a piece nobody asks for (a frozen gamma).
    const [dx, dgamma, dbeta] = tf.engine().runKernel(BN_TRAIN_GRAD, { dy, x, gamma, beta, mean, invstd }, { ...reluOf(attrs) }) as tf.Tensor[];
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
  },
};

/** y = (x - mean) / sqrt(variance + eps) * gamma + beta with stored statistics (one SIMD pass, as inference). */
const bnFrozen: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { x, gamma, beta, mean, variance } = inputs as Record<'x' | 'gamma' | 'beta' | 'mean' | 'variance', TensorInfo>;
  const C = lastDim(x);
  const y = b.makeOutput(x.shape, 'float32');
  const p = (t: TensorInfo): number => offsetOf(b, t.dataId);
  const relu = reluOf(attrs);
  withScratch(b, 8 * C, (tmp) =>
    trainKernels(b).bn_infer(
      p(x),
      p(mean),
      p(variance),
      p(beta),
      p(gamma),
      p(y),
      tmp,
      sizeOf(x) / C,
      C,
      (attrs as { epsilon: number }).epsilon,
      relu.hi,
      relu.act,
    ),
  );
  return y;
};

/** [dx, dgamma, dbeta] of the stored-statistics BatchNorm, in one pass over dy and x. */
const bnFrozenGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, x, gamma, beta, mean, variance } = inputs as Record<'dy' | 'x' | 'gamma' | 'beta' | 'mean' | 'variance', TensorInfo>;
  const C = lastDim(x);
  const dx = b.makeOutput(x.shape, 'float32');
  const dgamma = b.makeOutput([C], 'float32');
  const dbeta = b.makeOutput([C], 'float32');
  const p = (t: TensorInfo): number => offsetOf(b, t.dataId);
  const relu = reluOf(attrs);
  withScratch(b, 28 * C, (s) =>
    trainKernels(b).bn_frozen_bwd(
      p(dy),
      p(x),
      p(gamma),
      p(beta),
      p(mean),
      p(variance),
      p(dx),
      p(dgamma),
      p(dbeta),
      s,
      sizeOf(x) / C,
      C,
      (attrs as { epsilon: number }).epsilon,
      relu.hi,
      relu.act,
    ),
  );
  return [dx, dgamma, dbeta];
};

const bnFrozenGradConfig: GradConfig = {
  kernelName: BN_FROZEN,
  inputsToSave: ['x', 'gamma', 'beta', 'mean', 'variance'],
  gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const dy = Array.isArray(dys) ? dys[0] : dys;
    const [x, gamma, beta, mean, variance] = saved;
    const epsilon = (attrs as { epsilon: number }).epsilon;
    // Eager for the reason given at bnTrainGradConfig; the three come from one pass. With a fused ReLU,
    // dgamma and dbeta are already those of the masked gradient, so the statistics' gradients below are too.
    const [dx, dgamma, dbeta] = tf.engine().runKernel(BN_FROZEN_GRAD, { dy, x, gamma, beta, mean, variance }, { epsilon, ...reluOf(attrs) }) as tf.Tensor[];
    // The statistics are constants of a frozen layer and never trained, but their gradients are cheap
    // per-channel maps of the two sums, so a caller differentiating through them gets the true values:
    // d/dmean = -sum(dy)·gamma·invstd, d/dvariance = -½·gamma·invstd²·dgamma.
    const invstd = (): tf.Tensor => tf.rsqrt(tf.add(variance, epsilon));
    return {
      x: () => dx,
      gamma: () => dgamma,
      beta: () => dbeta,
      mean: () => tf.neg(tf.mul(dbeta, tf.mul(gamma, invstd()))),
      variance: () => tf.mul(tf.mul(-0.5, dgamma), tf.mul(gamma, tf.square(invstd()))),
    };
  },
};

/** y = min(max(x, 0), hi). */
const clamp: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { x } = inputs as { x: TensorInfo };
  const y = b.makeOutput(x.shape, 'float32');
  trainKernels(b).clamp_fwd(offsetOf(b, x.dataId), offsetOf(b, y.dataId), sizeOf(x), (attrs as { hi: number }).hi);
  return y;
};

const clampGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as BackendWasm;
  const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
  const { hi, hiInclusive } = attrs as { hi: number; hiInclusive: boolean };
  const dx = b.makeOutput(x.shape, 'float32');
  trainKernels(b).clamp_bwd(offsetOf(b, dy.dataId), offsetOf(b, x.dataId), offsetOf(b, dx.dataId), sizeOf(x), hi, hiInclusive ? 1 : 0);
  return dx;
};

const clampGradConfig: GradConfig = {
  kernelName: CLAMP,
  inputsToSave: ['x'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: NamedAttrMap) => {
    const [x] = saved;
    return { x: () => tf.engine().runKernel(CLAMP_GRAD, { dy: dy as tf.Tensor, x }, attrs) as tf.Tensor };
  },
};

export const fusedKernelConfigs: KernelConfig[] = [
  { kernelName: BN_TRAIN, backendName: 'wasm', kernelFunc: bnTrain },
  { kernelName: BN_TRAIN_GRAD, backendName: 'wasm', kernelFunc: bnTrainGrad },
  { kernelName: BN_FROZEN, backendName: 'wasm', kernelFunc: bnFrozen },
  { kernelName: BN_FROZEN_GRAD, backendName: 'wasm', kernelFunc: bnFrozenGrad },
  { kernelName: CLAMP, backendName: 'wasm', kernelFunc: clamp },
  { kernelName: CLAMP_GRAD, backendName: 'wasm', kernelFunc: clampGrad },
];
export const fusedGradConfigs: GradConfig[] = [bnTrainGradConfig, bnFrozenGradConfig, clampGradConfig];

/* ---------------------------------- ops (wasm only) ---------------------------------- */

/** Batch-statistics BatchNorm over all axes but the last; mean and biased variance as tf.moments gives. */
export function batchNormTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  relu: FusedRelu = NO_RELU,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  const [y, mean, variance, invstd] = tf.engine().runKernel(BN_TRAIN, { x, gamma, beta }, { epsilon, ...relu }) as tf.Tensor[];
  invstd.dispose(); // the tape holds its own reference when gradients are being recorded
  return { y, mean, variance };
}

/**
 * BatchNorm with stored statistics over the last axis, as a frozen layer trains: forward is the inference
 * pass, backward one pass for dx, dgamma and dbeta (the per-channel affine form, x·scale + shift, had a
 * broadcast Sum and Multiply per gradient and made a frozen-BN step ~1.7x a training-mode one).
 */
export function batchNormFrozen(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  mean: tf.Tensor,
  variance: tf.Tensor,
  epsilon: number,
  relu: FusedRelu = NO_RELU,
): tf.Tensor {
  return tf.engine().runKernel(BN_FROZEN, { x, gamma, beta, mean, variance }, { epsilon, ...relu }) as tf.Tensor;
}

/** min(max(x, 0), hi); the gradient passes where 0 < x < hi (x <= hi with hiInclusive). */
export function clampRelu(x: tf.Tensor, hi: number, hiInclusive: boolean): tf.Tensor {
  return tf.engine().runKernel(CLAMP, { x }, { hi, hiInclusive }) as tf.Tensor;
}

/* ---------------------------------- layer routing ---------------------------------- */

type Ctor = { prototype: Record<string, unknown> };
const PATCHED = Symbol.for('layertune.wasmFused');

function layerClass(name: string): Ctor {
  const map = tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [Ctor, unknown]>;
  const entry = map[name];
  if (!entry) throw new Error(`tfjs-layers has no registered class ${name}`);
  return entry[0];
}

const onWasm = (x: tf.Tensor): boolean => tf.getBackend() === 'wasm' && x.dtype === 'float32';
const one = (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(inputs) ? inputs[0] : inputs);

/**
 * BatchNorm outputs computed with their ReLU inside the BN kernel, each mapped to the ReLU layer that then passes
 * it through: the clamp's input never exists (one pass and one activation-sized tensor less per pair, forward and
 * backward) and the values and gradients are the separate ops' own, bit for bit (csrc/train_kernels.c act_mask).
 */
const ACTIVATED = new WeakMap<tf.Tensor, object>();

interface GraphNode {
  inboundLayers: object[];
  outboundLayer: object;
}
interface GraphLayer {
  inboundNodes: GraphNode[];
  outboundNodes: GraphNode[];
  getClassName(): string;
}

/** The clamp a plain ReLU layer applies, with the gradient mask its unfused path (below) uses; null for any other layer. */
function reluOfLayer(layer: GraphLayer): FusedRelu | null {
  if (layer.getClassName() === 'ReLU') return { hi: (layer as { maxValue?: number | null }).maxValue ?? Infinity, act: 2 };
  if (layer.getClassName() !== 'Activation') return null;
  const name = (layer as { activation?: { getClassName(): string } }).activation?.getClassName();
  return name === 'relu' ? { hi: Infinity, act: 1 } : name === 'relu6' ? { hi: 6, act: 1 } : null;
}

/**
 * The ReLU a BatchNorm layer may apply inside its own kernel: every call of the layer, in every model built on it
 * (the trained model, the prefix and suffix a frozen-stage split replays, a worker's copy), feeds one call of the same
 * plain ReLU layer and nothing else. A BN output read by anything else keeps its separate ReLU, and so does one
 * that a model ends at (a prefix cut at the BN has a BN call that no ReLU call reads). The layer graph cannot show
 * a model whose *output* is the BN's while the ReLU also reads it; no model layertune builds is like that.
 */
export function followingRelu(layer: tf.layers.Layer): { relu: FusedRelu; consumer: object } | null {
  const l = layer as unknown as GraphLayer;
  const calls = l.inboundNodes?.length ?? 0;
  if (calls === 0 || l.outboundNodes?.length !== calls) return null;
  const consumer = l.outboundNodes[0].outboundLayer as GraphLayer;
  if (!l.outboundNodes.every((n) => n.outboundLayer === consumer && n.inboundLayers.length === 1 && n.inboundLayers[0] === l)) return null;
  if (consumer.inboundNodes.length !== calls) return null;
  const relu = reluOfLayer(consumer);
  return relu ? { relu, consumer } : null;
}

/**
 * Runs a BatchNorm layer's kernel with the ReLU it may take over (followingRelu), or none, and marks the output
 * so that ReLU layer passes it through.
 */
export function withFollowingRelu(layer: tf.layers.Layer, run: (relu: FusedRelu | undefined) => tf.Tensor): tf.Tensor {
  const follow = followingRelu(layer);
  const y = run(follow?.relu);
  if (follow) ACTIVATED.set(y, follow.consumer);
  return y;
}

interface BnLayer {
  axis: number;
  epsilon: number;
  momentum: number;
  center: boolean;
  scale: boolean;
  gamma: tf.LayerVariable;
  beta: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

/**
 * Routes the stock layers to the fused ops while the wasm backend is active; on any other backend,
 * or for a configuration the fused ops do not cover, the stock code runs unchanged. Numerically the
 * same functions (test/engine/fused.test.ts). Must run before anything captures a layer's `call`
 * (src/models/batchnorm.ts binds it per instance when a BN mode is set).
 */
export function routeLayersToFusedOps(): void {
  const bn = layerClass('BatchNormalization').prototype as Record<string | symbol, unknown>;
  if (bn[PATCHED]) return;
  const bnCall = bn.call as (this: BnLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor;
  bn.call = function (this: BnLayer, inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = one(inputs);
    const training = kwargs?.training === true;
    if (!training || !onWasm(x) || x.rank < 2 || !(this.axis === -1 || this.axis === x.rank - 1) || !this.center || !this.scale) {
      return bnCall.call(this, inputs, kwargs);
    }
    return withFollowingRelu(this as unknown as tf.layers.Layer, (relu) =>
      tf.tidy(() => {
        const { y, mean, variance } = batchNormTrain(x, this.gamma.read(), this.beta.read(), this.epsilon, relu);
        // Same moving-average update as tfjs-layers (biased batch variance, as Keras does).
        const ema = (v: tf.LayerVariable, value: tf.Tensor): void =>
          tf.tidy(() => {
            const o = v.read();
            v.write(tf.sub(o, tf.mul(tf.sub(o, value), 1 - this.momentum)));
          });
        ema(this.movingMean, mean);
        ema(this.movingVariance, variance);
        return y;
      }),
    );
  };
  bn[PATCHED] = true;

  // tf.layers.reLU({maxValue}): relu then clipByValue(0, max) → gradient mask 0 < x <= max.
  const relu = layerClass('ReLU').prototype as Record<string | symbol, unknown>;
  const reluCall = relu.call as (this: { maxValue?: number | null }, i: tf.Tensor | tf.Tensor[], k: unknown) => tf.Tensor;
  relu.call = function (this: { maxValue?: number | null }, inputs: tf.Tensor | tf.Tensor[], kwargs: unknown): tf.Tensor {
    const x = one(inputs);
    if (ACTIVATED.get(x) === this) return x;
    if (!onWasm(x)) return reluCall.call(this, inputs, kwargs);
    return clampRelu(x, this.maxValue ?? Infinity, true);
  };
  relu[PATCHED] = true;

  // tf.layers.activation: passes through a BatchNorm output that already holds its relu/relu6
  const activation = layerClass('Activation').prototype as Record<string | symbol, unknown>;
  const activationCall = activation.call as (this: unknown, i: tf.Tensor | tf.Tensor[], k: unknown) => tf.Tensor;
  activation.call = function (this: unknown, inputs: tf.Tensor | tf.Tensor[], kwargs: unknown): tf.Tensor {
    const x = one(inputs);
    return ACTIVATED.get(x) === this ? x : activationCall.call(this, inputs, kwargs);
  };
  activation[PATCHED] = true;

  // activation: 'relu6' is minimum(6, relu(x)) → mask 0 < x < 6; 'relu' → x > 0.
  for (const [name, hi] of [
    ['relu6', 6],
    ['relu', Infinity],
  ] as const) {
    const act = layerClass(name).prototype as Record<string | symbol, unknown>;
    const apply = act.apply as (this: unknown, x: tf.Tensor, alpha?: number) => tf.Tensor;
    act.apply = function (this: unknown, x: tf.Tensor, alpha?: number): tf.Tensor {
      return onWasm(x) ? clampRelu(x, hi, false) : apply.call(this, x, alpha);
    };
    act[PATCHED] = true;
  }
}

import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../errors';
import type { Preprocess, StageDef } from '../types';

type Sym = tf.SymbolicTensor;

/**
 * Whose weights the graph will carry. The two frameworks disagree in ways that silently shift
 * outputs if ignored: stride-2 padding (Keras 'same' pads 0 before / 1 after on even inputs,
 * PyTorch pads 1 and 1), BatchNorm epsilon (PyTorch 1e-5, Keras 1e-3) and momentum.
 */
export type Convention = 'torch' | 'keras';

export type ParamKind = 'conv' | 'depthwise' | 'bn' | 'dense';

/** A layer that owns weights, with the names other frameworks give it. */
export interface ParamLayer {
  /** tfjs (= Keras) layer name. */
  layer: string;
  kind: ParamKind;
  /** torchvision module path, e.g. `layer1.0.conv1`. */
  torch?: string;
  /** timm module path where it differs from torchvision. */
  timm?: string;
}

/** What an architecture builder produces. */
export interface BuiltArch {
  arch: string;
  convention: Convention;
  /** input → feature map (the Backbone's model). */
  features: tf.LayersModel;
  /** input → logits through global average pooling and a Dense layer; shares layers with `features`. */
  classifier?: tf.LayersModel;
  stages: StageDef[];
  preprocess: Preprocess;
  inputSize: number;
  params: ParamLayer[];
}

export const TORCH_PREPROCESS: Preprocess = { kind: 'normalize', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
export const KERAS_MOBILENET_PREPROCESS: Preprocess = { kind: 'scale', low: -1, high: 1 };

/** Channel rounding shared by torchvision and Keras MobileNetV2 (never below 90% of the request). */
export function makeDivisible(v: number, divisor = 8, minValue = divisor): number {
  let out = Math.max(minValue, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (out < 0.9 * v) out += divisor;
  return out;
}

export interface ConvSpec {
  name: string;
  filters: number;
  kernel: number;
  stride?: number;
  bias?: boolean;
  torch?: string;
  timm?: string;
  /** Name of the explicit padding layer inserted for stride > 1 under the torch convention. */
  padName?: string;
  /** 'valid': the caller already padded explicitly (both conventions). */
  padding?: 'valid';
}

/**
 * Emits layers in one convention and records which of them own weights. Not reusable across
 * models: each builder makes one.
 */
export class GraphBuilder {
  readonly params: ParamLayer[] = [];

  constructor(
    readonly convention: Convention,
    private readonly bnEpsilon: number,
    private readonly bnMomentum: number,
  ) {}

  /**
   * A k×k convolution padded like its weights expect. Stride 1 with odd k is symmetric in both
   * frameworks ('same'); stride > 1 under torch gets an explicit symmetric ZeroPadding2D + 'valid'.
   */
  conv(x: Sym, s: ConvSpec): Sym {
    const stride = s.stride ?? 1;
    const { input, padding } = s.padding === 'valid' ? { input: x, padding: 'valid' as const } : this.padFor(x, s.kernel, stride, s.padName ?? `${s.name}_pad`);
    this.params.push({ layer: s.name, kind: 'conv', torch: s.torch, timm: s.timm });
    return tf.layers.conv2d({ name: s.name, filters: s.filters, kernelSize: s.kernel, strides: stride, padding, useBias: s.bias ?? false }).apply(input) as Sym;
  }

  depthwise(x: Sym, s: Omit<ConvSpec, 'filters'>): Sym {
    const stride = s.stride ?? 1;
    const { input, padding } = this.padFor(x, s.kernel, stride, s.padName ?? `${s.name}_pad`);
    this.params.push({ layer: s.name, kind: 'depthwise', torch: s.torch, timm: s.timm });
    return tf.layers
      .depthwiseConv2d({ name: s.name, kernelSize: s.kernel, strides: stride, padding, depthMultiplier: 1, useBias: s.bias ?? false })
      .apply(input) as Sym;
  }

  bn(x: Sym, name: string, torch?: string, timm?: string): Sym {
    this.params.push({ layer: name, kind: 'bn', torch, timm });
    return tf.layers.batchNormalization({ name, axis: -1, epsilon: this.bnEpsilon, momentum: this.bnMomentum }).apply(x) as Sym;
  }

  dense(x: Sym, name: string, units: number, torch?: string, timm?: string): Sym {
    this.params.push({ layer: name, kind: 'dense', torch, timm });
    return tf.layers.dense({ name, units }).apply(x) as Sym;
  }

  relu(x: Sym, name: string): Sym {
    return tf.layers.reLU({ name }).apply(x) as Sym;
  }

  relu6(x: Sym, name: string): Sym {
    return tf.layers.reLU({ name, maxValue: 6 }).apply(x) as Sym;
  }

  zeroPad(x: Sym, name: string, pad: number): Sym {
    return tf.layers
      .zeroPadding2d({
        name,
        padding: [
          [pad, pad],
          [pad, pad],
        ],
      })
      .apply(x) as Sym;
  }

  add(xs: Sym[], name: string): Sym {
    return tf.layers.add({ name }).apply(xs) as Sym;
  }

  private padFor(x: Sym, kernel: number, stride: number, padName: string): { input: Sym; padding: 'same' | 'valid' } {
    if (kernel === 1) return { input: x, padding: 'valid' };
    if (stride === 1 || this.convention === 'keras') return { input: x, padding: 'same' };
    return { input: this.zeroPad(x, padName, Math.floor(kernel / 2)), padding: 'valid' };
  }
}

/** Global average pooling + Dense head producing logits, sharing every layer with `features`. */
export function attachClassifier(
  b: GraphBuilder,
  input: Sym,
  features: Sym,
  numClasses: number,
  names: { pool: string; dense: string; torch: string; timm?: string },
  modelName: string,
): tf.LayersModel {
  const pooled = tf.layers.globalAveragePooling2d({ name: names.pool }).apply(features) as Sym;
  const logits = b.dense(pooled, names.dense, numClasses, names.torch, names.timm);
  return tf.model({ inputs: input, outputs: logits, name: modelName });
}

/**
 * The end of every builder: the features model, the optional classifier (torchvision/Keras/timm names
 * for its dense layer) and the declared stages, packed as a BuiltArch.
 */
export function finishArch(
  b: GraphBuilder,
  input: Sym,
  x: Sym,
  parts: Pick<BuiltArch, 'arch' | 'convention' | 'stages' | 'preprocess' | 'inputSize'> & {
    numClasses?: number;
    head: { pool: string; dense: string; torch: string; timm?: string };
  },
): BuiltArch {
  const { numClasses, head, ...rest } = parts;
  const features = tf.model({ inputs: input, outputs: x, name: parts.arch });
  const classifier = numClasses ? attachClassifier(b, input, x, numClasses, head, `${parts.arch}_classifier`) : undefined;
  return { ...rest, features, classifier, params: b.params };
}

export function checkInputSize(size: number, min: number, arch: string): void {
  if (!Number.isInteger(size) || size < min) throw new ConfigError('model.inputSize', `${arch} needs an integer input size ≥ ${min}, got ${size}`);
}

/** Options every architecture builder takes. */
export interface ArchOptions {
  /** Whose weights will be loaded; decides padding and BatchNorm constants. Default 'torch' (ResNet, V2), 'keras' (V1). */
  convention?: Convention;
  /** Square input side. */
  inputSize?: number;
  /** Build the logits model too, with this many classes (0/undefined: features only). */
  numClasses?: number;
}

export { formatAlpha } from './names';

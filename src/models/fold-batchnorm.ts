import * as tf from '@tensorflow/tfjs';

/**
 * Inference-time BatchNorm folding. At inference a BatchNorm that follows a linear convolution is
 * a per-output-channel affine map, y = conv(x)·s + t with s = γ/√(σ²+ε) and t = β − μ·s, so it can
 * be absorbed into the convolution's kernel and bias: one op and one pass over the feature map
 * instead of three. Training keeps the separate layers (batch statistics and γ/β gradients need them).
 *
 * The ReLU or ReLU6 right after such a convolution can then move into it as well (its `activation`), and
 * the convolution runs as one fused op with bias and clamp in its output loop. Stock tfjs-layers fuses only
 * `relu` into Conv2D and nothing into DepthwiseConv2D (bias is a separate Add there), so
 * `bindFusedConvCalls` routes those layers through `tf.fused.*` themselves: a MobileNet's every
 * depthwise + bias + ReLU6 becomes one kernel instead of three passes over the feature map.
 */

/** Stored BatchNorm parameters of one layer; `gamma`/`beta` are null when the layer has scale/center off. */
export interface BatchNormParams {
  gamma: ArrayLike<number> | null;
  beta: ArrayLike<number> | null;
  mean: ArrayLike<number>;
  variance: ArrayLike<number>;
  epsilon: number;
}

/**
 * Folds BatchNorm into a channels-last kernel. Both tfjs kernel layouts keep the output channel in
 * the innermost position: Conv2D [kh, kw, in, out] and DepthwiseConv2D [kh, kw, in, multiplier],
 * whose output channel is in·multiplier + m, so flat index i belongs to channel i mod `channels`.
 * Computed in float64 and rounded once, so folding adds a single float32 rounding per weight.
 */
export function foldKernel(
  kernel: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  bn: BatchNormParams,
  channels: number,
): { kernel: Float32Array; bias: Float32Array } {
  if (kernel.length % channels !== 0) throw new RangeError(`kernel of ${kernel.length} values does not split into ${channels} output channels`);
  for (const [what, a] of [
    ['moving mean', bn.mean],
    ['moving variance', bn.variance],
    ['gamma', bn.gamma],
    ['beta', bn.beta],
    ['bias', bias],
  ] as const) {
    if (a && a.length !== channels) throw new RangeError(`${what} has ${a.length} values for ${channels} channels`);
  }
  const scale = new Float64Array(channels);
  const outBias = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = (bn.gamma ? bn.gamma[c] : 1) / Math.sqrt(bn.variance[c] + bn.epsilon);
    outBias[c] = ((bias ? bias[c] : 0) - bn.mean[c]) * scale[c] + (bn.beta ? bn.beta[c] : 0);
  }
  const outKernel = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) outKernel[i] = kernel[i] * scale[i % channels];
  return { kernel: outKernel, bias: outBias };
}

/** A convolution whose only consumer is the BatchNorm right after it. */
export interface FoldPair {
  conv: string;
  bn: string;
}

interface LayerCfg {
  name: string;
  className: string;
  config: Record<string, any>;
  inboundNodes: any[][];
}
interface ModelCfg {
  layers: LayerCfg[];
  outputLayers: any[][];
}

const CONVS = new Set(['Conv2D', 'DepthwiseConv2D']);

/** The activation a layer applies when it is nothing but ReLU or ReLU6 (fusable into a convolution), else null. */
function plainRelu(l: LayerCfg): 'relu' | 'relu6' | null {
  if (l.className === 'Activation') return l.config.activation === 'relu' || l.config.activation === 'relu6' ? l.config.activation : null;
  // tf.layers.reLU: relu, then a clip at maxValue when one is set
  if (l.className === 'ReLU') return l.config.maxValue == null ? 'relu' : l.config.maxValue === 6 ? 'relu6' : null;
  return null;
}

/** How many inbound references each layer's output has (the model's outputs count as readers). */
function readerCounts(cfg: ModelCfg): Map<string, number> {
  const readers = new Map<string, number>();
  const count = (name: string) => readers.set(name, (readers.get(name) ?? 0) + 1);
  for (const l of cfg.layers) for (const node of l.inboundNodes) for (const ref of node) count(ref[0]);
  for (const ref of cfg.outputLayers) count(ref[0]);
  return readers;
}

/**
 * Drops each layer named in `into` from `cfg`, its readers (and the model outputs) reading the layer it maps to
 * instead. Every dropped layer has one inbound node and one output, so a reference [name, 0, 0, kwargs] becomes
 * [replacement, 0, 0, kwargs].
 */
function bypass(cfg: ModelCfg, into: ReadonlyMap<string, string>): void {
  cfg.layers = cfg.layers.filter((l) => !into.has(l.name));
  const rewire = (ref: any[]) => (into.has(ref[0]) ? [into.get(ref[0]), ...ref.slice(1)] : ref);
  for (const l of cfg.layers) l.inboundNodes = l.inboundNodes.map((node) => node.map(rewire));
  cfg.outputLayers = cfg.outputLayers.map(rewire);
}

/**
 * Removes every plain ReLU/ReLU6 layer whose input is a linear, channels-last convolution called once that
 * nothing else reads, making it that convolution's `activation`; references to the removed layer go to the
 * convolution. Returns the removed layers' names. Same function: relu(conv(x)) either way.
 */
function mergeActivations(cfg: ModelCfg): string[] {
  const byName = new Map(cfg.layers.map((l) => [l.name, l]));
  const readers = readerCounts(cfg);
  const into = new Map<string, string>();
  for (const act of cfg.layers) {
    const relu = plainRelu(act);
    if (!relu || act.inboundNodes.length !== 1 || act.inboundNodes[0].length !== 1) continue;
    const conv = byName.get(act.inboundNodes[0][0][0]);
    if (!conv || !CONVS.has(conv.className) || conv.inboundNodes.length !== 1 || readers.get(conv.name) !== 1) continue;
    if ((conv.config.activation ?? 'linear') !== 'linear' || conv.config.dataFormat === 'channelsFirst') continue;
    conv.config.activation = relu;
    into.set(act.name, conv.name);
  }
  bypass(cfg, into);
  return [...into.keys()];
}

type FusedActivation = 'linear' | 'relu' | 'relu6';

/** What bindFusedConvCalls reads off a built Conv2D/DepthwiseConv2D layer (tfjs-layers' own fields). */
interface ConvFields {
  kernel?: tf.LayerVariable;
  depthwiseKernel?: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  useBias: boolean;
  strides: [number, number];
  padding: 'same' | 'valid';
  dataFormat: string;
  dilationRate: number[];
  activation: { getClassName(): string } | null;
}

/**
 * Makes each Conv2D and DepthwiseConv2D layer of `model` that stock tfjs-layers would run as separate ops (a
 * depthwise with bias or an activation, a Conv2D with ReLU6) call one `tf.fused` op with its bias and activation
 * instead. Under a gradient tape `tf.fused` itself falls back to the separate ops, so training is unaffected.
 */
export function bindFusedConvCalls(model: tf.LayersModel): void {
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (!CONVS.has(cls)) continue;
    const f = layer as unknown as ConvFields;
    const act = (f.activation?.getClassName() ?? 'linear') as FusedActivation;
    if (act !== 'linear' && act !== 'relu' && act !== 'relu6') continue;
    if (f.dataFormat !== 'channelsLast' || f.dilationRate.some((d) => d !== 1)) continue;
    // stock Conv2D already fuses bias with linear and relu; stock DepthwiseConv2D fuses nothing
    if (cls === 'Conv2D' ? act !== 'relu6' : act === 'linear' && !f.useBias) continue;
    const depthwise = cls === 'DepthwiseConv2D';
    layer.call = (inputs: tf.Tensor | tf.Tensor[]) =>
      tf.tidy(() => {
        const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
        const args = {
          x,
          strides: f.strides,
          pad: f.padding,
          dataFormat: 'NHWC' as const,
          bias: f.useBias && f.bias ? f.bias.read() : undefined,
          activation: act,
        };
        return depthwise
          ? tf.fused.depthwiseConv2d({ ...args, filter: f.depthwiseKernel!.read() as tf.Tensor4D })
          : tf.fused.conv2d({ ...args, filter: f.kernel!.read() as tf.Tensor4D });
      });
  }
}

/**
 * The (conv, BatchNorm) pairs that fold exactly: the conv is linear (no fused activation), channels
 * last, called once, and its output feeds nothing but the BatchNorm, which normalises the last axis.
 * Anything else (a shared layer, a branch that also reads the raw conv output) is left as it is.
 */
export function foldablePairs(model: tf.LayersModel): FoldPair[] {
  const cfg = model.getConfig() as unknown as ModelCfg;
  const byName = new Map(cfg.layers.map((l) => [l.name, l]));
  const readers = readerCounts(cfg);
  const pairs: FoldPair[] = [];
  for (const bn of cfg.layers) {
    if (bn.className !== 'BatchNormalization' || bn.inboundNodes.length !== 1 || bn.inboundNodes[0].length !== 1) continue;
    const axis = bn.config.axis;
    if (axis !== -1 && axis !== 3) continue;
    const conv = byName.get(bn.inboundNodes[0][0][0]);
    if (!conv || !CONVS.has(conv.className) || conv.inboundNodes.length !== 1) continue;
    if ((conv.config.activation ?? 'linear') !== 'linear' || conv.config.dataFormat === 'channelsFirst') continue;
    if (readers.get(conv.name) !== 1) continue;
    pairs.push({ conv: conv.name, bn: bn.name });
  }
  return pairs;
}

function folded(conv: tf.layers.Layer, bn: tf.layers.Layer): tf.Tensor[] {
  const cw = conv.getWeights();
  const bnCfg = bn.getConfig() as { scale?: boolean; center?: boolean; epsilon: number };
  const bw = bn.getWeights();
  let k = 0;
  const gamma = bnCfg.scale !== false ? bw[k++].dataSync() : null;
  const beta = bnCfg.center !== false ? bw[k++].dataSync() : null;
  const mean = bw[k++].dataSync();
  const variance = bw[k++].dataSync();
  const shape = cw[0].shape as number[];
  const channels = conv.getClassName() === 'DepthwiseConv2D' ? shape[2] * shape[3] : shape[3];
  const out = foldKernel(cw[0].dataSync(), cw.length > 1 ? cw[1].dataSync() : null, { gamma, beta, mean, variance, epsilon: bnCfg.epsilon }, channels);
  return [tf.tensor(out.kernel, shape, 'float32'), tf.tensor1d(out.bias, 'float32')];
}

/**
 * A model that computes what `source` computes at inference (`training: false`), with every foldable
 * BatchNorm merged into its convolution and, unless `fuseActivations` is false, every ReLU/ReLU6 that
 * follows a convolution merged into it too (its layers calling the fused ops, bindFusedConvCalls). It is
 * built once from the source's own config, so it holds only stock layers and saves as a plain tfjs
 * LayersModel; `refresh` re-reads the source's weights (after training steps) without rebuilding. Owns
 * its weights: call `dispose` when done.
 */
export class FoldedModel {
  private constructor(
    private readonly source: tf.LayersModel,
    readonly model: tf.LayersModel,
    readonly pairs: FoldPair[],
    /** The activation layers now inside their convolutions. */
    readonly mergedActivations: string[],
  ) {}

  /** Null when `source` has nothing to fold or merge (use it as it is). */
  static create(source: tf.LayersModel, opts: { fuseActivations?: boolean } = {}): FoldedModel | null {
    const pairs = foldablePairs(source);
    const cfg = structuredClone(source.getConfig()) as unknown as ModelCfg & { name?: string };
    const convs = new Set(pairs.map((p) => p.conv));
    for (const l of cfg.layers) if (convs.has(l.name)) l.config.useBias = true;
    bypass(cfg, new Map(pairs.map((p) => [p.bn, p.conv])));
    const merged = opts.fuseActivations === false ? [] : mergeActivations(cfg);
    if (!pairs.length && !merged.length) return null;
    // fastWeightInit: every weight is overwritten by refresh, so skip the random initialisation
    const model = (tf.LayersModel as any).fromConfig(tf.LayersModel, cfg, {}, true) as tf.LayersModel;
    bindFusedConvCalls(model);
    const f = new FoldedModel(source, model, pairs, merged);
    f.refresh();
    return f;
  }

  /** Copies the source's current weights in, folding each pair. */
  refresh(): void {
    const convOf = new Map(this.pairs.map((p) => [p.conv, p.bn]));
    for (const layer of this.model.layers) {
      if (!layer.weights.length) continue;
      const src = this.source.getLayer(layer.name);
      const bn = convOf.get(layer.name);
      if (bn === undefined) {
        // setWeights shares the source tensors' storage (reference-counted), nothing is copied
        layer.setWeights(src.getWeights());
        continue;
      }
      const w = folded(src, this.source.getLayer(bn));
      layer.setWeights(w);
      tf.dispose(w);
    }
  }

  dispose(): void {
    this.model.dispose();
  }
}

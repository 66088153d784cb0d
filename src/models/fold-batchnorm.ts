import * as tf from '@tensorflow/tfjs';

/**
 * Inference-time BatchNorm folding. At inference a BatchNorm that follows a linear convolution is
 * a per-output-channel affine map, y = conv(x)·s + t with s = γ/√(σ²+ε) and t = β − μ·s, so it can
 * be absorbed into the convolution's kernel and bias: one op and one pass over the feature map
 * instead of three. Training keeps the separate layers (batch statistics and γ/β gradients need them).
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

/**
 * The (conv, BatchNorm) pairs that fold exactly: the conv is linear (no fused activation), channels
 * last, called once, and its output feeds nothing but the BatchNorm, which normalises the last axis.
 * Anything else (a shared layer, a branch that also reads the raw conv output) is left as it is.
 */
export function foldablePairs(model: tf.LayersModel): FoldPair[] {
  const cfg = model.getConfig() as unknown as ModelCfg;
  const byName = new Map(cfg.layers.map((l) => [l.name, l]));
  const readers = new Map<string, number>();
  const count = (name: string) => readers.set(name, (readers.get(name) ?? 0) + 1);
  for (const l of cfg.layers) for (const node of l.inboundNodes) for (const ref of node) count(ref[0]);
  for (const ref of cfg.outputLayers) count(ref[0]);
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
 * BatchNorm merged into its convolution. It is built once from the source's own config, so it holds
 * only stock layers and saves as a plain tfjs LayersModel; `refresh` re-reads the source's weights
 * (after training steps) without rebuilding. Owns its weights: call `dispose` when done.
 */
export class FoldedModel {
  private constructor(
    private readonly source: tf.LayersModel,
    readonly model: tf.LayersModel,
    readonly pairs: FoldPair[],
  ) {}

  /** Null when `source` has nothing to fold (use it as it is). */
  static create(source: tf.LayersModel): FoldedModel | null {
    const pairs = foldablePairs(source);
    if (!pairs.length) return null;
    const cfg = structuredClone(source.getConfig()) as unknown as ModelCfg & { name?: string };
    const bnToConv = new Map(pairs.map((p) => [p.bn, p.conv]));
    const convs = new Set(pairs.map((p) => p.conv));
    cfg.layers = cfg.layers.filter((l) => !bnToConv.has(l.name));
    const rewire = (ref: any[]) => (bnToConv.has(ref[0]) ? [bnToConv.get(ref[0]), ...ref.slice(1)] : ref);
    for (const l of cfg.layers) {
      if (convs.has(l.name)) l.config.useBias = true;
      l.inboundNodes = l.inboundNodes.map((node) => node.map(rewire));
    }
    cfg.outputLayers = cfg.outputLayers.map(rewire);
    // fastWeightInit: every weight is overwritten by refresh, so skip the random initialisation
    const model = (tf.LayersModel as any).fromConfig(tf.LayersModel, cfg, {}, true) as tf.LayersModel;
    const f = new FoldedModel(source, model, pairs);
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

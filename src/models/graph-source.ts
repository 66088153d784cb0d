import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ModelFormatError } from '../errors';
import { fileHandler } from './io';
import { classifySource } from './registry';
import type { Preprocess } from './types';

/**
 * A feature extractor that cannot be trained: a tfjs GraphModel such as the TF-Hub MobileNet that
 * `@tensorflow-models/mobilenet` loads (BatchNorm folded into the convolutions, no variables).
 * It supports exactly one recipe: compute embeddings once, cache them, train a new head on them.
 */
export interface FrozenEmbedder {
  readonly kind: 'frozen';
  arch: string;
  source: string;
  inputSize: number;
  /** How raw pixels become the input `embed` expects (TF-Hub image modules: [0,1]). */
  preprocess: Preprocess;
  embeddingSize: number;
  /** Preprocessed NHWC batch → [N, embeddingSize]. The caller disposes the result. */
  embed(x: tf.Tensor4D): tf.Tensor2D;
  /** The module's own classifier output (1001 logits with background for TF-Hub ImageNet models). */
  logits(x: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

/**
 * Embedding and logits nodes of the GraphModels @tensorflow-models/mobilenet knows (the same
 * names it uses for `infer(img, true)`).
 */
const KNOWN_GRAPHS: Array<{ arch: string; embedding: string }> = [
  { arch: 'mobilenet_v1', embedding: 'module_apply_default/MobilenetV1/Logits/global_pool' },
  { arch: 'mobilenet_v2', embedding: 'module_apply_default/MobilenetV2/Logits/AvgPool' },
];

const HUB_PREPROCESS: Preprocess = { kind: 'scale', low: 0, high: 1 };

/** Loads a local GraphModel folder (or model.json) as a frozen embedder. */
export async function loadFrozenEmbedder(uri: string, opts: { inputSize?: number } = {}): Promise<FrozenEmbedder> {
  const { kind, location } = classifySource(uri);
  if (kind !== 'tfjs-graph') throw new ModelFormatError(location, `is a ${kind} source, not a tfjs GraphModel; load it with loadBackbone`);
  let model: tf.GraphModel;
  try {
    model = await tf.loadGraphModel(fileHandler(location));
  } catch (e) {
    if (e instanceof ModelFormatError) throw e;
    throw new ModelFormatError(location, `tfjs could not load the GraphModel: ${(e as Error).message}`);
  }
  // the node list is in model.json (already size-checked and parsed once by the loader above)
  const topology = JSON.parse(fs.readFileSync(location, 'utf-8')).modelTopology as { node?: Array<{ name: string }> };
  const nodes = new Set(topology.node?.map((n) => n.name) ?? []);
  const known = KNOWN_GRAPHS.find((g) => nodes.has(g.embedding));
  if (!known) {
    model.dispose();
    throw new ModelFormatError(location, `GraphModel nodes: no known embedding node (${KNOWN_GRAPHS.map((g) => g.embedding).join(', ')})`);
  }
  const inputSize = opts.inputSize ?? 224;
  const probe = tf.tidy(() => (model.execute(tf.zeros([1, inputSize, inputSize, 3]), known.embedding) as tf.Tensor).shape);
  const embeddingSize = probe[probe.length - 1];
  return {
    kind: 'frozen',
    arch: `${known.arch}_graph`,
    source: location,
    inputSize,
    preprocess: HUB_PREPROCESS,
    embeddingSize,
    embed: (x) => tf.tidy(() => (model.execute(x, known.embedding) as tf.Tensor).reshape([x.shape[0], embeddingSize])),
    // the graph's own output, as @tensorflow-models/mobilenet's classify() uses it
    logits: (x) => tf.tidy(() => (model.execute(x) as tf.Tensor).reshape([x.shape[0], -1]) as tf.Tensor2D),
    dispose: () => model.dispose(),
  };
}

/**
 * The plain answer when a user asks to fine-tune (unfreeze) layers of a frozen embedder: which
 * config field, why it cannot be, and what works instead.
 */
export function refuseUnfreeze(e: FrozenEmbedder, field: string, requested: string): never {
  throw new ConfigError(
    field,
    `${requested} asks to fine-tune ${e.source}, a tfjs GraphModel (${e.arch}): it is inference-only (BatchNorm folded, no trainable variables), so only a new head can be trained, on its cached embeddings. Train head-only, or use a LayersModel, .safetensors or .h5 source of the same network to fine-tune it`,
  );
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, ModelFormatError } from '../errors';
import { fileHandler } from './io';
import { classifySource } from './classify-source';
import { fetchToCache, isRemote, type RemoteOptions } from './remote';
import { HEAD_LAYERS } from './network';
import type { Backbone, Preprocess } from './types';

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
  /** The graph node whose output is the embedding (what `@tensorflow-models/mobilenet` `infer(img, true)` returns). */
  embeddingNode: string;
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

/** Loads a GraphModel folder or model.json (local, file:// or http(s)://, cached) as a frozen embedder. */
export async function loadFrozenEmbedder(uri: string, opts: { inputSize?: number; remote?: RemoteOptions } = {}): Promise<FrozenEmbedder> {
  const local = isRemote(uri) ? await fetchToCache(uri, opts.remote) : uri;
  const { kind, location } = classifySource(local);
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
    // what an export's metadata points at: the URL itself, or an absolute path (predict may run elsewhere)
    source: isRemote(uri) ? uri : path.resolve(location),
    embeddingNode: known.embedding,
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
export function refuseUnfreeze(e: { source: string; arch: string }, field: string, requested: string): never {
  throw new ConfigError(
    field,
    `${requested} asks to fine-tune ${e.source}, a tfjs GraphModel (${e.arch}): it is inference-only (BatchNorm folded, no trainable variables), so only a new head can be trained, on its cached embeddings. Train head-only, or use a LayersModel, .safetensors or .h5 source of the same network to fine-tune it`,
  );
}

// ---------------------------------------------------------------------------------------------
// The GraphModel as a Backbone: head-only training through the ordinary job.
// ---------------------------------------------------------------------------------------------

/** Name of the wrapper layer (and of the backbone's only stage's end). */
export const GRAPH_LAYER = 'graph_embedding';

/**
 * A GraphModel inside a LayersModel: image batch → [N, embeddingSize], with no weights at all. The
 * grouping therefore finds nothing to train before the head, the trainer caches this stage's output
 * (one graph execution per image), and only the new head trains. No gradient flows through it: the
 * trainer never differentiates a frozen, cached prefix.
 */
export class GraphEmbeddingLayer extends tf.layers.Layer {
  static readonly className = 'LayertuneGraphEmbedding';
  private released = false;

  constructor(
    private readonly embedder: FrozenEmbedder,
    name = GRAPH_LAYER,
  ) {
    super({ name, trainable: false });
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0], this.embedder.embeddingSize];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    return this.embedder.embed(x);
  }

  override getConfig(): tf.serialization.ConfigDict {
    // for layerGraph()/describe only: a model holding this layer is never saved (the export is the head alone)
    return { ...super.getConfig(), graph: this.embedder.source, embeddingNode: this.embedder.embeddingNode };
  }

  override dispose(): ReturnType<tf.layers.Layer['dispose']> {
    const r = super.dispose();
    if (r.refCountAfterDispose === 0) this.releaseGraph();
    return r;
  }

  /**
   * Frees the GraphModel's tensors now, whatever the layer's reference count (every symbolic
   * re-application raises it, so model.dispose() alone may never reach zero). Idempotent.
   */
  releaseGraph(): void {
    if (this.released) return;
    this.released = true;
    this.embedder.dispose();
  }
}
tf.serialization.registerClass(GraphEmbeddingLayer);

/**
 * A GraphModel (e.g. `@tensorflow-models/mobilenet`'s TF-Hub MobileNet) as a head-only Backbone: `model`
 * maps [0,1] images to the pooled embedding [N, C] through a weightless wrapper layer; one stage.
 */
export async function loadGraphBackbone(uri: string, opts: { inputSize?: number; remote?: RemoteOptions } = {}): Promise<Backbone> {
  const e = await loadFrozenEmbedder(uri, opts);
  const input = tf.input({ shape: [e.inputSize, e.inputSize, 3], name: 'images' });
  const out = new GraphEmbeddingLayer(e).apply(input) as tf.SymbolicTensor;
  return {
    arch: e.arch,
    model: tf.model({ inputs: input, outputs: out, name: 'backbone' }),
    stages: [{ name: 'graph', endLayer: GRAPH_LAYER }],
    preprocess: e.preprocess,
    inputSize: e.inputSize,
    source: e.source,
    headOnly: `${e.source} is a tfjs GraphModel (${e.arch}): inference-only (BatchNorm folded, no trainable variables), so only a new head can be trained, on its cached embeddings`,
  };
}

/**
 * The plain refusal when a job's grouping asks to train layers of a head-only backbone. `grouping` is the
 * job's `groups` section AS GIVEN (before defaults): the default three stepped groups are fine (the
 * backbone's groups are simply empty), but explicitly asking for several groups or layer decay, or a
 * rule that gives a rate to backbone layers (and to no head layer), asks for fine-tuning.
 */
export function checkHeadOnly(backbone: Backbone, grouping: unknown, field = 'groups'): void {
  if (!backbone.headOnly || grouping == null || typeof grouping !== 'object') return;
  const g = grouping as Record<string, unknown>;
  const refuse = (at: string, what: string): never => refuseUnfreeze({ source: backbone.source, arch: backbone.arch }, at, what);
  if (g.strategy === 'layerDecay') refuse(`${field}.strategy`, 'layerDecay (one rate per backbone stage)');
  if (typeof g.groups === 'number' && g.groups > 1) refuse(`${field}.groups`, `groups: ${g.groups} (rates for backbone stages)`);
  if (Array.isArray(g.lrs) && g.lrs.length > 1) refuse(`${field}.lrs`, `lrs: ${JSON.stringify(g.lrs)} (rates for backbone stages)`);
  const backboneNames = backboneLayerNames(backbone);
  const rules = Array.isArray(g.rules) ? (g.rules as Array<Record<string, unknown>>) : [];
  rules.forEach((r, i) => {
    if (typeof r?.match !== 'string' || r.freeze === true || r.lr === 0 || r.lrMult === 0) return;
    if (r.lr === undefined && r.lrMult === undefined && r.group === undefined) return; // decay settings only
    let re: RegExp;
    try {
      re = new RegExp(r.match);
    } catch {
      return; // the planner reports the bad expression with its field
    }
    const hitsBackbone = backboneNames.some((n) => re.test(n));
    const hitsHead = HEAD_LAYERS.some((n) => re.test(n));
    if (hitsBackbone && !hitsHead) refuse(`${field}.rules[${i}]`, `the rule /${r.match}/ (a rate for backbone layers)`);
  });
}

/** The wrapper layer and, for a GraphModel, the names of the graph's nodes a rule might aim at. */
function backboneLayerNames(b: Backbone): string[] {
  const names = b.model.layers.map((l) => l.name);
  for (const l of b.model.layers) {
    if (l instanceof GraphEmbeddingLayer) {
      const graph = (l.getConfig() as { graph: string }).graph;
      names.push(...graphNodeNames(graph));
    }
  }
  return names;
}

function graphNodeNames(source: string): string[] {
  try {
    const file = isRemote(source) ? null : classifySource(source).location;
    if (!file) return [];
    const topology = JSON.parse(fs.readFileSync(file, 'utf-8')).modelTopology as { node?: Array<{ name: string }> };
    return topology.node?.map((n) => n.name) ?? [];
  } catch {
    return [];
  }
}

/**
 * An export trained on a GraphModel holds the head alone (a plain LayersModel over the embedding, input
 * [N, C]); metadata.json's backbone names the GraphModel. True for such an export.
 */
export function isGraphHeadExport(head: tf.LayersModel, metadata: { backbone?: { arch?: string } } | null): boolean {
  return Boolean(metadata?.backbone?.arch?.endsWith('_graph')) && head.inputs[0].shape.length === 2;
}

/**
 * Chains an exported head after the GraphModel it was trained on: the result maps preprocessed images
 * ([0,1]) to the head's probabilities, as one LayersModel (what `layertune predict` needs). The graph
 * comes from metadata.backbone.source (a path, or a URL served from the cache).
 */
export async function chainGraphHead(
  head: tf.LayersModel,
  metadata: { backbone: { arch: string; source: string }; inputSize?: number },
  opts: { remote?: RemoteOptions } = {},
): Promise<tf.LayersModel> {
  const b = await loadGraphBackbone(metadata.backbone.source, { inputSize: metadata.inputSize, remote: opts.remote });
  const embedding = b.model.outputs[0];
  const c = head.inputs[0].shape[1];
  if (embedding.shape[1] !== c) {
    throw new ModelFormatError(metadata.backbone.source, `embeds to ${embedding.shape[1]} values but the exported head expects ${c}`);
  }
  const probs = head.apply(embedding) as tf.SymbolicTensor;
  return tf.model({ inputs: b.model.inputs, outputs: probs, name: 'layertune_graph_head' });
}

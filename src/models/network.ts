import * as tf from '@tensorflow/tfjs';
import { replay } from './graph';
import { setBatchNormMode, isBatchNorm, type BatchNormMode } from './batchnorm';
import type { Backbone } from './types';

export const HEAD_LAYERS = ['lt_head_pool', 'lt_head_dropout', 'lt_head_dense'] as const;
export const SOFTMAX_LAYER = 'lt_head_softmax';

/**
 * The backbone plus a new head for the user's classes. `train` ends in logits (the loss is
 * computed from logits for numerical stability); `infer` adds the softmax and is what gets exported.
 */
export interface Network {
  backbone: Backbone;
  classes: string[];
  train: tf.LayersModel;
  infer: tf.LayersModel;
  /** Stage index of every layer that owns weights; the head is stage `backbone.stages.length`. */
  stageOf: Map<string, number>;
}

export interface HeadOptions {
  dropout: number;
  seed: number;
}

/**
 * A 4-D feature map is pooled first; a backbone that already ends in a pooled embedding [N, C] (a
 * GraphModel) goes straight to dropout and dense. For a head-only backbone `infer` is the head alone
 * over that embedding (input [N, C]), because the GraphModel cannot be saved inside a LayersModel:
 * the export is a plain tfjs LayersModel whose metadata names the GraphModel to run before it.
 */
export function attachHead(backbone: Backbone, classes: string[], opts: HeadOptions): Network {
  const input = backbone.model.inputs[0];
  const features = backbone.model.outputs[0];
  const dropout = tf.layers.dropout({ rate: opts.dropout, name: HEAD_LAYERS[1], seed: opts.seed });
  const dense = tf.layers.dense({
    units: classes.length,
    name: HEAD_LAYERS[2],
    kernelInitializer: tf.initializers.glorotUniform({ seed: opts.seed }),
  });
  const softmax = tf.layers.activation({ activation: 'softmax', name: SOFTMAX_LAYER });
  const pooled = features.shape.length === 2 ? features : (tf.layers.globalAveragePooling2d({ name: HEAD_LAYERS[0] }).apply(features) as tf.SymbolicTensor);
  const logits = dense.apply(dropout.apply(pooled)) as tf.SymbolicTensor;
  const train = tf.model({ inputs: input, outputs: logits, name: 'layertune_train' });
  let infer: tf.LayersModel;
  if (backbone.headOnly) {
    const embedding = tf.input({ shape: [features.shape[1] as number], name: 'embedding' });
    infer = tf.model({ inputs: embedding, outputs: softmax.apply(dense.apply(dropout.apply(embedding))) as tf.SymbolicTensor, name: 'layertune' });
  } else {
    infer = tf.model({ inputs: input, outputs: softmax.apply(logits) as tf.SymbolicTensor, name: 'layertune' });
  }
  return { backbone, classes, train, infer, stageOf: stageIndex(backbone, train) };
}

function stageIndex(backbone: Backbone, model: tf.LayersModel): Map<string, number> {
  const ends = new Map(backbone.stages.map((s, i) => [s.endLayer, i]));
  const out = new Map<string, number>();
  let stage = 0;
  let inHead = false;
  for (const layer of model.layers) {
    if ((HEAD_LAYERS as readonly string[]).includes(layer.name)) inHead = true;
    out.set(layer.name, inHead ? backbone.stages.length : stage);
    if (ends.has(layer.name)) stage = ends.get(layer.name)! + 1;
  }
  return out;
}

/**
 * Splits the logits model at a stage boundary: `prefix` maps images to that stage's output,
 * `suffix` maps it to logits. Both share weights with `net.train`.
 */
export function splitAtStage(net: Network, lastFrozenStage: number): { prefix: tf.LayersModel; suffix: tf.LayersModel } {
  const cut = net.backbone.stages[lastFrozenStage].endLayer;
  const full = net.train;
  const input = full.inputs[0];
  const prefixOut = replay(full, new Map([[full.inputLayers[0].name, input]]), cut);
  const prefix = tf.model({ inputs: input, outputs: prefixOut, name: 'layertune_prefix' });
  const cutInput = tf.input({ shape: prefixOut.shape.slice(1) as number[], name: 'lt_cut_input' });
  const logits = replay(full, new Map([[cut, cutInput]]));
  const suffix = tf.model({ inputs: cutInput, outputs: logits, name: 'layertune_suffix' });
  return { prefix, suffix };
}

/** Bytes of one image's cached prefix output when the first `cachedStages` stages are cached (float32). */
export function prefixOutputBytes(net: Network, cachedStages: number): number {
  // node 0 is the layer in the training graph; splitting at a stage adds nodes whose batch dimension may differ
  const shape = (net.train.getLayer(net.backbone.stages[cachedStages - 1].endLayer).getOutputAt(0) as tf.SymbolicTensor).shape as number[];
  return shape.slice(1).reduce((a, b) => a * b, 1) * 4;
}

/**
 * Frozen BN layers always use stored statistics (their weights do not move, so neither should
 * their statistics, and it is what makes caching a frozen prefix exact); trainable ones follow `mode`.
 */
export function applyBatchNormModes(net: Network, mode: BatchNormMode, frozenLayers: ReadonlySet<string>, momentum?: number): void {
  for (const layer of net.train.layers) {
    if (!isBatchNorm(layer)) continue;
    setBatchNormMode(layer, frozenLayers.has(layer.name) ? 'frozen' : mode, momentum);
  }
}

import type * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import { flatLayers } from '../optim/named';
import type { LayerInfo, VarRole } from './types';

/**
 * The role of a trainable variable: gamma/beta of any *Normalization layer → norm; a name ending
 * in `bias` (bias, depthwise_bias) → bias; everything else (kernel, depthwise_kernel,
 * pointwise_kernel, embeddings, ...) → kernel. Moving mean/variance are not trainable and never seen.
 */
export function roleOf(layerClass: string, variableName: string): VarRole {
  if (/Normalization$/.test(layerClass)) return 'norm';
  const short = variableName.slice(variableName.lastIndexOf('/') + 1);
  return /bias$/.test(short) ? 'bias' : 'kernel';
}

/**
 * Plain-data description of a real tfjs model for `planGroups`: every layer with trainable
 * variables (nested LayersModels flattened), in model order.
 *
 * Variable names are `LayerVariable.originalName` (e.g. `conv_pw_1/kernel`), NOT `.name`: tfjs
 * uniquifies `.name` per process (a model loaded twice gets `conv_pw_1/kernel_1`), which would make
 * plans, optimizer state and checkpoints depend on load order. `namedVariables(model)` (src/optim)
 * returns the tf.Variables under the same keys, for the trainer and the optimizer.
 * Only `layer.trainableWeights` are described: a layer set `trainable = false` in tfjs is absent.
 *
 * @param stageOf backbone stage index of a layer (front = 0); not called for head layers
 * @param headLayers names of the new head's layers: they come after the last backbone stage
 */
export function describeLayers(model: tf.LayersModel, stageOf: (layerName: string) => number, headLayers: Set<string>): LayerInfo[] {
  const out: LayerInfo[] = [];
  let maxStage = -1;
  for (const layer of flatLayers(model)) {
    const weights = layer.trainableWeights;
    if (weights.length === 0) continue;
    const isHead = headLayers.has(layer.name);
    let stage = -1;
    if (!isHead) {
      stage = stageOf(layer.name);
      if (!Number.isInteger(stage) || stage < 0) {
        throw new ConfigError(`layers.${layer.name}`, `no backbone stage for this layer (stageOf gave ${stage}) and it is not in the head`);
      }
      maxStage = Math.max(maxStage, stage);
    }
    const cls = layer.getClassName();
    out.push({
      name: layer.name,
      stage,
      isHead,
      variables: weights.map((w) => ({ name: w.originalName, shape: [...(w.shape as number[])], role: roleOf(cls, w.originalName) })),
    });
  }
  for (const l of out) if (l.isHead) l.stage = maxStage + 1;
  return out;
}

import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';

/** Every layer of a model, nested LayersModels (e.g. a Teachable Machine backbone) flattened in order. */
export function flatLayers(model: tf.LayersModel): tf.layers.Layer[] {
  const out: tf.layers.Layer[] = [];
  for (const layer of model.layers) {
    if (layer instanceof tf.LayersModel) out.push(...flatLayers(layer));
    else out.push(layer);
  }
  return out;
}

/**
 * The model's trainable variables keyed by their STABLE name, `LayerVariable.originalName`
 * (e.g. `conv_pw_1/kernel`). tfjs makes `.name` unique per process, so loading a model a second time
 * yields `conv_pw_1/kernel_1`: keying on it would break checkpoints and plans between runs.
 * Only `layer.trainableWeights` are listed (BatchNorm moving mean/variance never appear).
 */
export function namedVariables(model: tf.LayersModel): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const layer of flatLayers(model)) {
    for (const w of layer.trainableWeights) {
      const key = w.originalName;
      if (key in out) throw new ModelFormatError(model.name, `two trainable variables share the name "${key}"`);
      out[key] = w.read() as tf.Variable;
    }
  }
  return out;
}

/**
 * `tf.variableGrads` over exactly the given variables, with the gradients keyed by OUR names
 * (tfjs returns them under each tf.Variable's unique runtime name). Only the variables passed are
 * differentiated, so frozen ones cost nothing. The caller disposes `value` and `grads`.
 */
export function namedVariableGrads(f: () => tf.Scalar, vars: Record<string, tf.Variable>): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const entries = Object.entries(vars);
  const { value, grads } = tf.variableGrads(
    f,
    entries.map(([, v]) => v),
  );
  const out: Record<string, tf.Tensor> = {};
  // tfjs leaves out variables the loss does not depend on (and non-trainable ones): so do we,
  // and GroupedOptimizer then skips them as PyTorch skips `grad is None`.
  for (const [key, v] of entries) if (grads[v.name] !== undefined) out[key] = grads[v.name];
  return { value, grads: out };
}

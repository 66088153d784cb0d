import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';
import type { BuiltArch, ParamLayer } from './arch';

/** One stored weight: its shape, and its values decoded on demand (big files decode lazily). */
export interface StoredWeight {
  shape: number[];
  read(): Float32Array;
}

/** Weights addressed the Keras way: `layer/weight` (`conv1/kernel`, `conv1_bn/moving_mean`). */
export type KerasWeightMap = Map<string, StoredWeight>;

/** Keras weight names per slot, in the order tfjs layers hold them. */
function slotNames(p: ParamLayer, layer: tf.layers.Layer): string[] {
  const hasBias = layer.weights.length > (p.kind === 'bn' ? 4 : 1);
  switch (p.kind) {
    case 'conv':
      return hasBias ? ['kernel', 'bias'] : ['kernel'];
    case 'depthwise':
      return hasBias ? ['depthwise_kernel', 'bias'] : ['depthwise_kernel'];
    case 'dense':
      return ['kernel', 'bias'];
    case 'bn':
      return ['gamma', 'beta', 'moving_mean', 'moving_variance'];
  }
}

/** Keras heads written as a 1×1 conv on the pooled vector ([1,1,C,N]) load into a Dense [C,N]. */
function fitsAs(stored: number[], want: number[], kind: ParamLayer['kind']): boolean {
  if (stored.join('x') === want.join('x')) return true;
  return kind === 'dense' && want.length === 2 && stored.length === 4 && stored[0] === 1 && stored[1] === 1 && stored[2] === want[0] && stored[3] === want[1];
}

export interface KerasLoadOptions {
  /** Called with each stored name that no layer takes; return true to allow it (e.g. an unused head). */
  allowUnused?: (name: string) => boolean;
  /** Rewrites a weight before it is set (ResNet50's BGR → RGB fold on conv1). */
  transform?: (layer: string, slot: string, values: Float32Array, shape: number[]) => Float32Array;
}

/**
 * Copies Keras-named weights into a built architecture (both use Keras layer names, so no
 * transposes). Missing weights, wrong shapes and weights no layer takes are one ModelFormatError.
 */
export function loadKerasWeights(built: BuiltArch, weights: KerasWeightMap, file: string, opts: KerasLoadOptions = {}): void {
  const model = built.classifier ?? built.features;
  const problems: string[] = [];
  const used = new Set<string>();
  const plan: Array<{ layer: tf.layers.Layer; values: Array<{ name: string; slot: string; w: StoredWeight; shape: number[] }> }> = [];
  for (const p of built.params) {
    const layer = model.getLayer(p.layer);
    const values: Array<{ name: string; slot: string; w: StoredWeight; shape: number[] }> = [];
    slotNames(p, layer).forEach((slot, i) => {
      const name = `${p.layer}/${slot}`;
      const want = layer.weights[i].shape as number[];
      const w = weights.get(name);
      if (!w) {
        problems.push(`weight "${name}": missing`);
        return;
      }
      used.add(name);
      if (!fitsAs(w.shape, want, p.kind)) {
        problems.push(`weight "${name}".shape: [${w.shape}] does not match ${built.arch} (needs [${want}])`);
        return;
      }
      values.push({ name, slot, w, shape: want });
    });
    plan.push({ layer, values });
  }
  for (const name of weights.keys()) {
    if (!used.has(name) && !opts.allowUnused?.(name)) problems.push(`weight "${name}": not used by ${built.arch}`);
  }
  if (problems.length > 0) {
    throw new ModelFormatError(
      file,
      `${problems.length} weight problem(s) loading ${built.arch}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`,
    );
  }
  for (const { layer, values } of plan) {
    const tensors = values.map((v) => {
      const data = v.w.read();
      return tf.tensor(opts.transform ? opts.transform(layer.name, v.slot, data, v.shape) : data, v.shape, 'float32');
    });
    layer.setWeights(tensors);
    tf.dispose(tensors);
  }
}

/** The Keras-named weights of a loaded tfjs LayersModel (Google's MobileNets, Teachable Machine exports). */
export function weightsOfLayersModel(model: tf.LayersModel): KerasWeightMap {
  const map: KerasWeightMap = new Map();
  for (const layer of model.layers) {
    // nested models (Teachable Machine wraps the backbone) contribute their own layers' weights
    const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
    const owners = inner ? collectLayers(layer) : [layer];
    for (const l of owners) {
      for (const v of l.weights) {
        const slot = v.originalName.split('/').pop()!;
        const t = v.read();
        map.set(`${l.name}/${slot}`, { shape: t.shape, read: () => t.dataSync() as Float32Array });
      }
    }
  }
  return map;
}

function collectLayers(layer: tf.layers.Layer): tf.layers.Layer[] {
  const inner = (layer as unknown as { layers?: tf.layers.Layer[] }).layers;
  return inner ? inner.flatMap(collectLayers) : [layer];
}

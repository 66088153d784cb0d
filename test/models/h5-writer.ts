import type * as tf from '@tensorflow/tfjs';
import { loadH5wasm } from '../../src/models/keras-h5';

/** One Keras layer as `save_weights` lays it out: weight names like `conv1/kernel:0`, HWIO arrays. */
export interface H5Layer {
  name: string;
  weights: Array<{ name: string; shape: number[]; data: Float32Array }>;
}

/**
 * Writes a Keras 2 `save_weights`-style HDF5 file with h5wasm: root attr `layer_names` and per-layer
 * attr `weight_names` as fixed-length ASCII strings (as h5py writes numpy 'S' arrays), datasets at
 * /<layer>/<layer>/<slot>:0. Weight-less layers are listed with an empty `weight_names`, as Keras does.
 */
export async function writeKerasH5(file: string, layers: H5Layer[], opts: { under?: string; omitLayerNames?: boolean } = {}): Promise<void> {
  const h5wasm = await loadH5wasm();
  const f = new h5wasm.File(file, 'w');
  const root = opts.under ? f.create_group(opts.under) : f;
  const fixed = (xs: string[]): string => `A${Math.max(1, ...xs.map((s) => s.length))}`;
  const names = layers.map((l) => l.name);
  if (!opts.omitLayerNames) root.create_attribute('layer_names', names, [names.length], fixed(names));
  root.create_attribute('keras_version', '2.13.1');
  for (const l of layers) {
    const g = root.create_group(l.name);
    const wn = l.weights.map((w) => w.name);
    if (wn.length > 0) g.create_attribute('weight_names', wn, [wn.length], fixed(wn));
    else g.create_attribute('weight_names', new Float32Array(0), [0]);
    for (const w of l.weights) {
      const [sub, slot] = w.name.split('/');
      const sg = (g.keys().includes(sub) ? g.get(sub) : g.create_group(sub)) as ReturnType<typeof g.create_group>;
      sg.create_dataset({ name: slot, data: w.data, shape: w.shape, dtype: '<f' });
    }
  }
  f.close();
}

/** A tfjs model's layers in save_weights layout (weight-less layers included). */
export function layersOf(model: tf.LayersModel, rename: (layer: string) => string = (n) => n): H5Layer[] {
  return model.layers.map((l) => ({
    name: rename(l.name),
    weights: l.weights.map((v) => ({
      name: `${rename(l.name)}/${v.originalName.split('/').pop()}:0`,
      shape: v.shape as number[],
      data: v.read().dataSync() as Float32Array,
    })),
  }));
}

/**
 * Copies of model weights as plain typed arrays, outside the tfjs engine: a snapshot holds no tensors, so keeping
 * one for the whole run (restoreBestWeights) cannot leak, and it survives backend switches.
 */
import * as tf from '@tensorflow/tfjs';
import { flatLayers } from '../optim/named';

export interface WeightCopy {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  values: Float32Array | Int32Array | Uint8Array;
}

export type WeightSnapshot = WeightCopy[];

/** Read and write a model's weights; the trainer adapts its model to this. */
export interface WeightStore {
  read(): WeightSnapshot;
  write(snapshot: WeightSnapshot): void;
}

/** A weight the store can copy: its stable key, its current value, and how to write a new one. */
interface WeightEntry {
  key: string;
  value(): tf.Tensor;
  assign(t: tf.Tensor): void;
}

/** How a write that does not fit is reported (a resume names its config field; other callers need no more than an Error). */
export interface WeightMismatch {
  missing(keys: string[]): Error;
  shape(key: string, snapshot: number[], variable: number[]): Error;
}

const PLAIN: WeightMismatch = {
  missing: (keys) => new Error(`weight snapshot has no entry for ${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''}`),
  shape: (key, snap, v) => new Error(`weight snapshot shape ${snap.join('x')} ≠ variable ${key} shape ${v.join('x')}`),
};

/** The one copy-out/copy-in behind every store: plain arrays out, checked by key and shape on the way back. */
function entryStore(entries: () => WeightEntry[], mismatch: WeightMismatch): WeightStore {
  return {
    read() {
      return entries().map(({ key, value }) => {
        const t = value();
        return {
          name: key,
          shape: t.shape.slice(),
          dtype: t.dtype as WeightCopy['dtype'],
          // slice(): dataSync may hand back the backend's own buffer, which the next update would overwrite.
          values: (t.dataSync() as WeightCopy['values']).slice(),
        };
      });
    },
    write(snapshot) {
      const byName = new Map(snapshot.map((w) => [w.name, w]));
      const all = entries();
      const missing = all.filter(({ key }) => !byName.has(key)).map((e) => e.key);
      if (missing.length) throw mismatch.missing(missing);
      for (const { key, value, assign } of all) {
        const w = byName.get(key)!;
        const shape = value().shape;
        if (w.shape.join('x') !== shape.join('x')) throw mismatch.shape(key, w.shape, shape);
        tf.tidy(() => assign(tf.tensor(w.values, w.shape, w.dtype)));
      }
    },
  };
}

/** A WeightStore over tf.Variables, keyed by their runtime names. */
export function variableWeightStore(variables: () => readonly tf.Variable[]): WeightStore {
  return entryStore(() => variables().map((v) => ({ key: v.name, value: () => v, assign: (t) => v.assign(t) })), PLAIN);
}

/**
 * Every weight of a model (trainable or not, BatchNorm moving mean/variance included) keyed by the stable
 * `LayerVariable.originalName`, so a snapshot loads into a model built in another process. This is the store
 * checkpoints, early stopping, the divergence guard and the tuning tools all use.
 */
export function layerWeightStore(model: tf.LayersModel, mismatch: WeightMismatch = PLAIN): WeightStore {
  const entries = (): WeightEntry[] => {
    const out: WeightEntry[] = [];
    const seen = new Set<string>();
    for (const layer of flatLayers(model)) {
      for (const w of layer.weights) {
        if (seen.has(w.originalName)) continue; // a layer shared between models appears once
        seen.add(w.originalName);
        out.push({ key: w.originalName, value: () => w.read(), assign: (t) => w.write(t) });
      }
    }
    return out;
  };
  return entryStore(entries, mismatch);
}

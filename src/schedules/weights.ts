/**
 * Copies of model weights as plain typed arrays, outside the tfjs engine: a snapshot holds no tensors, so keeping
 * one for the whole run (restoreBestWeights) cannot leak, and it survives backend switches.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import { flatLayers } from '../optim/named';
import type { Stateful } from '../stateful';

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

/** How a write that does not fit is reported: a resume names its config field, an in-process copy a plain Error. */
interface WeightMismatch {
  missing(keys: string[]): Error;
  shape(key: string, snapshot: number[], variable: number[]): Error;
}

const firstKeys = (keys: string[]) => `${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''}`;

const IN_PROCESS: WeightMismatch = {
  missing: (keys) => new Error(`weight snapshot has no entry for ${firstKeys(keys)}`),
  shape: (key, snap, v) => new Error(`weight snapshot shape ${snap.join('x')} ≠ variable ${key} shape ${v.join('x')}`),
};

// a checkpoint from another model is the user's mistake, so it is reported as one line under `resume`
const FROM_CHECKPOINT: WeightMismatch = {
  missing: (keys) => new ConfigError('resume', `the checkpoint has no weights for ${firstKeys(keys)} (another model?)`),
  shape: (key, snap, v) => new ConfigError('resume', `weight ${key} has shape [${snap}] in the checkpoint, [${v}] in the model`),
};

/**
 * Every weight of a model (trainable or not, BatchNorm moving mean/variance included) keyed by the stable
 * `LayerVariable.originalName`, so a snapshot loads into a model built in another process. The one weight
 * snapshot of the code base: the divergence guard's rollback, early stopping's best weights, checkpoints and
 * the tuning tools' weight resets all go through it. As a `Stateful` part it is the checkpoint's `weights`.
 */
export class ModelWeights implements WeightStore, Stateful<WeightSnapshot> {
  readonly stateKey = 'weights';
  constructor(private readonly model: tf.LayersModel) {}

  read(): WeightSnapshot {
    return this.entries().map((w) => {
      const t = w.read();
      return {
        name: w.originalName,
        shape: t.shape.slice(),
        dtype: t.dtype as WeightCopy['dtype'],
        // slice(): dataSync may hand back the backend's own buffer, which the next update would overwrite.
        values: (t.dataSync() as WeightCopy['values']).slice(),
      };
    });
  }

  write(snapshot: WeightSnapshot): void {
    this.writeChecked(snapshot, IN_PROCESS);
  }

  getState(): WeightSnapshot {
    return this.read();
  }

  setState(snapshot: WeightSnapshot): void {
    this.writeChecked(snapshot, FROM_CHECKPOINT);
  }

  /** Every key and shape is checked before the first weight is written, so a mismatch changes nothing. */
  private writeChecked(snapshot: WeightSnapshot, mismatch: WeightMismatch): void {
    const byName = new Map(snapshot.map((w) => [w.name, w]));
    const all = this.entries();
    const missing = all.filter((w) => !byName.has(w.originalName)).map((w) => w.originalName);
    if (missing.length) throw mismatch.missing(missing);
    for (const w of all) {
      const s = byName.get(w.originalName)!;
      if (s.shape.join('x') !== w.shape.join('x')) throw mismatch.shape(w.originalName, s.shape, w.shape as number[]);
    }
    for (const w of all) {
      const s = byName.get(w.originalName)!;
      tf.tidy(() => {
        w.write(tf.tensor(s.values, s.shape, s.dtype));
      });
    }
  }

  private entries(): LayerVariable[] {
    const out: LayerVariable[] = [];
    const seen = new Set<string>();
    for (const layer of flatLayers(this.model)) {
      for (const w of layer.weights) {
        if (seen.has(w.originalName)) continue; // a layer shared between models appears once
        seen.add(w.originalName);
        out.push(w);
      }
    }
    return out;
  }
}

type LayerVariable = tf.layers.Layer['weights'][number];

/** The weights of `model`, keyed by original name: see ModelWeights. */
export function modelWeights(model: tf.LayersModel): ModelWeights {
  return new ModelWeights(model);
}

/**
 * Copies of model weights as plain typed arrays, outside the tfjs engine: a snapshot holds no tensors, so keeping
 * one for the whole run (restoreBestWeights) cannot leak, and it survives backend switches.
 */
import * as tf from '@tensorflow/tfjs';

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

/** A WeightStore over tf.Variables (e.g. `model.trainableWeights.map(w => w.read())` gives the variables' values). */
export function variableWeightStore(variables: () => readonly tf.Variable[]): WeightStore {
  return {
    read() {
      return variables().map((v) => ({
        name: v.name,
        shape: v.shape.slice(),
        dtype: v.dtype as WeightCopy['dtype'],
        // slice(): dataSync may hand back the backend's own buffer, which the next update would overwrite.
        values: (v.dataSync() as WeightCopy['values']).slice(),
      }));
    },
    write(snapshot) {
      const byName = new Map(snapshot.map((w) => [w.name, w]));
      for (const v of variables()) {
        const w = byName.get(v.name);
        if (!w) throw new Error(`weight snapshot has no entry for variable ${v.name}`);
        if (w.shape.join('x') !== v.shape.join('x')) {
          throw new Error(`weight snapshot shape ${w.shape.join('x')} ≠ variable ${v.name} shape ${v.shape.join('x')}`);
        }
        tf.tidy(() => v.assign(tf.tensor(w.values, w.shape, w.dtype)));
      }
    },
  };
}

import * as tf from '@tensorflow/tfjs';

/**
 * What the PyTorch peer times: one SGD(momentum 0.9, weight decay 5e-4) step of softmax cross-entropy
 * with BatchNorm in training mode, and one inference pass in eval mode.
 */
export interface Stepper {
  train(): Promise<number>;
  /** One inference pass; returns how many images it classified (batch, or batch per worker with threads > 1). */
  infer(): Promise<number>;
  dispose(): void;
}

/**
 * threads > 1: the gradient is computed data-parallel (src/engine/wasm/parallel.ts), with the same
 * weight decay added to the summed gradient before the same optimizer update.
 */
export async function makeStepper(model: tf.LayersModel, batch: number, size: number, classes: number, threads = 1, fold = true): Promise<Stepper> {
  const { ParallelGradients } = await import('../../src/engine/wasm/parallel');
  const { FoldedModel } = await import('../../src/models/fold-batchnorm');
  // inference as layertune predict runs it: BatchNorm folded into the convolutions (folded once, as predict does)
  let folded: ReturnType<typeof FoldedModel.create> | undefined;
  const pg = threads > 1 ? await ParallelGradients.create(model, { threads }) : undefined;
  const x = tf.randomNormal([batch, size, size, 3]);
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % classes),
    'int32',
  );
  const y = tf.oneHot(labels, classes);
  labels.dispose();
  const opt = tf.train.momentum(0.01, 0.9);
  const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const decay = 5e-4;
  let pool: import('../../src/engine/inference-pool').InferencePool | undefined;
  let xHost: Float32Array | undefined;
  return {
    async train(): Promise<number> {
      if (pg) {
        const { loss, grads } = await pg.gradients(x, y);
        const byName = new Map(trainable.map((v) => [v.name, v]));
        tf.tidy(() => {
          const decayed: tf.NamedTensorMap = {};
          for (const [k, g] of Object.entries(grads)) decayed[k] = g.add(byName.get(k)!.mul(decay));
          opt.applyGradients(decayed as Record<string, tf.Variable>);
        });
        tf.dispose(grads);
        return loss;
      }
      const loss = opt.minimize(
        () => {
          const logits = model.apply(x, { training: true }) as tf.Tensor;
          const ce = tf.losses.softmaxCrossEntropy(y, logits);
          const l2 = tf.addN(trainable.map((v) => tf.sum(tf.square(v)))).mul(decay / 2);
          return ce.add(l2) as tf.Scalar;
        },
        true,
        trainable,
      );
      const v = (await loss!.data())[0];
      loss!.dispose();
      return v;
    },
    async infer(): Promise<number> {
      if (folded === undefined) folded = fold ? FoldedModel.create(model) : null;
      const net = folded?.model ?? model;
      if (threads > 1) {
        // as predict --threads N spreads batches: one batch to each of N inference workers at once
        if (!pool) {
          const { InferencePool } = await import('../../src/engine/inference-pool');
          pool = await InferencePool.create(net, { threads, size, preprocess: { kind: 'scale', low: -1, high: 1 } });
          xHost = x.dataSync() as Float32Array;
        }
        const p = pool;
        const inputs = Array.from({ length: threads }, () => xHost!.slice());
        await Promise.all(inputs.map((xi) => p.run({ x: xi, shape: x.shape })));
        return threads * batch;
      }
      const out = tf.tidy(() => net.predict(x) as tf.Tensor);
      await out.data();
      out.dispose();
      return batch;
    },
    dispose(): void {
      tf.dispose([x, y]);
      opt.dispose();
      folded?.dispose();
      void pg?.dispose();
      void pool?.dispose();
    },
  };
}

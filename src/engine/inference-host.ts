/*
 * What answers an InferencePool's messages inside a worker thread: one model copy, its weights refreshed on request,
 * whole batches through it. Both kinds of worker run it: an inference worker (inference-worker.ts) holds a model for
 * its whole life; a gradient worker (src/engine/wasm/parallel-worker.ts) takes one on for a validation pass (`load`
 * and `unload`), so the per-epoch validation needs no wasm instance besides the ones training already has.
 */
import * as tf from '@tensorflow/tfjs';
import { preprocessBatch } from '../data/preprocess';
import { bindFusedConvCalls } from '../models/fold-batchnorm';
import type { InferenceReply, InferenceRequest, InferenceWorkerInit } from './inference-pool';

export type WeightsMessage = { type: 'weights'; id: number; weightSpecs: tf.io.WeightsManifestEntry[]; weightData: ArrayBuffer };
/** A hosted model (a gradient worker's): taken on with its artifacts, dropped again when the pass is over. */
export type LoadMessage = { type: 'load'; id: number; init: InferenceWorkerInit };
export type UnloadMessage = { type: 'unload'; id: number };
export type HostMessage = InferenceRequest | WeightsMessage | LoadMessage | UnloadMessage;

/**
 * The model rebuilt from its in-memory save, on this thread's (already initialised) backend, its convolutions
 * calling the fused ops as on the calling thread (a save keeps the topology, not the bound calls).
 */
export async function modelFrom(init: InferenceWorkerInit): Promise<tf.LayersModel> {
  const model = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: init.modelTopology, weightSpecs: init.weightSpecs, weightData: init.weightData }));
  bindFusedConvCalls(model);
  return model;
}

export class InferenceHost {
  private model: tf.LayersModel | null = null;
  private init: InferenceWorkerInit | null = null;

  /** Takes on `model` built from `init` (disposing any earlier one). */
  hold(model: tf.LayersModel, init: InferenceWorkerInit): void {
    this.drop();
    this.model = model;
    this.init = init;
  }

  drop(): void {
    this.model?.dispose();
    this.model = null;
    this.init = null;
  }

  /** Whether `m` is a message this host answers (a gradient worker routes the rest to its steps). */
  static handles(m: { type: string }): m is HostMessage {
    return m.type === 'run' || m.type === 'weights' || m.type === 'load' || m.type === 'unload';
  }

  /** Answers one message through `post` (a reply and the buffers it transfers); errors come back as replies too. */
  async answer(m: HostMessage, post: (reply: InferenceReply, transfer?: ArrayBuffer[]) => void): Promise<void> {
    try {
      if (m.type === 'load') {
        this.hold(await modelFrom(m.init), m.init);
        post({ type: 'weights-set', id: m.id });
        return;
      }
      if (m.type === 'unload') {
        this.drop();
        post({ type: 'weights-set', id: m.id });
        return;
      }
      const model = this.model;
      const init = this.init;
      if (!model || !init) throw new Error('no model loaded');
      if (m.type === 'weights') {
        const named = tf.io.decodeWeights(m.weightData, m.weightSpecs);
        model.loadWeights(named);
        tf.dispose(Object.values(named));
        post({ type: 'weights-set', id: m.id });
        return;
      }
      const out = tf.tidy(() => {
        const x = 'pixels' in m ? preprocessBatch(m.pixels, m.n, init.size, init.preprocess) : tf.tensor(m.x, m.shape, 'float32');
        const y = model.predict(x) as tf.Tensor;
        // a copy of our own: the cpu backend's dataSync array is the tensor's storage, which must not be transferred
        return new Float32Array(y.reshape([x.shape[0], -1]).dataSync());
      });
      post({ type: 'done', id: m.id, out, numTensors: tf.memory().numTensors }, [out.buffer as ArrayBuffer]);
    } catch (e) {
      post({ type: 'error', id: m.id, message: String((e as Error)?.message ?? e) });
    }
  }
}

/**
 * Weight EMA as timm's ModelEmaV3: a moving average of EVERY weight of the model, parameters and BatchNorm moving
 * statistics alike (ModelEmaV3 with its default `exclude_buffers=False` lerps every floating-point entry of the
 * state dict and copies the others), updated after each applied optimizer step:
 *
 *   ema ← ema + (1 − d)·(w − ema)        (torch.lerp, what ModelEmaV3 runs; = d·ema + (1 − d)·w)
 *   d   = min(decay, (1 + t)/(10 + t))   with warmup, t = optimizer steps taken (this one included); else decay
 *
 * The lerp form matters: a weight that never moves (a frozen layer) gives w − ema = 0, so its average stays equal
 * to it bit for bit, where d·ema + (1 − d)·w could drift by a rounding each step.
 *
 * The warmup is the schema's (TensorFlow's ExponentialMovingAverage `num_updates` rule), not ModelEmaV3's
 * power-law one. The average starts as a copy of the weights when the run starts, as timm's deep copy does.
 */
import * as tf from '@tensorflow/tfjs';
import type { EmaConfig } from '../data/augment-schema';
import { flatLayers } from '../optim/named';
import type { WeightCopy, WeightSnapshot, WeightStore } from '../schedules/weights';
import type { Stateful } from '../stateful';
import { CALLBACK_ORDER, type Callback } from './callbacks';

type LayerWeight = tf.LayersModel['weights'][number];

/** How the average's entries are named next to the model's own (checkpoint files, the guard's rollback copy). */
const EMA_PREFIX = 'ema:';

/** The decay of the t-th update (t counted from 1). */
export function emaDecay(cfg: Pick<EmaConfig, 'decay' | 'warmup'>, t: number): number {
  return cfg.warmup ? Math.min(cfg.decay, (1 + t) / (10 + t)) : cfg.decay;
}

/** The EMA's part of a checkpoint: how many updates it has taken and the averaged weights, by stable name. */
export interface EmaState {
  updates: number;
  weights: WeightSnapshot;
}

/** What a summary or metadata.json says about the EMA of a run. */
export interface EmaRecord {
  /** Which weights the export holds. */
  weights: EmaConfig['export'];
  decay: number;
  warmup: boolean;
  /** Updates taken (optimizer steps applied), and the decay of the last one. */
  updates: number;
  lastDecay: number | null;
}

/** Every weight of a model once, keyed by `originalName` (a layer shared between sub-models appears once). */
function modelWeights(model: tf.LayersModel): Array<{ key: string; w: LayerWeight }> {
  const out: Array<{ key: string; w: LayerWeight }> = [];
  const seen = new Set<string>();
  for (const layer of flatLayers(model)) {
    for (const w of layer.weights) {
      if (seen.has(w.originalName)) continue;
      seen.add(w.originalName);
      out.push({ key: w.originalName, w });
    }
  }
  return out;
}

/**
 * The average itself, shaped like a checkpoint part (`stateKey`, `getState`, `setState`). It holds one tensor per
 * model weight; `dispose` frees them. Swapping the averaged weights into the model (`withAveragedWeights`) shares
 * tensor buffers instead of copying them: every weight update in layertune is an `assign` of a new tensor, never a
 * write into an existing buffer, so a shared buffer cannot change under either side.
 */
export class WeightEma implements Stateful<EmaState> {
  readonly stateKey = 'ema';
  private readonly entries: Array<{ key: string; w: LayerWeight }>;
  private avg: tf.Tensor[];
  private updates = 0;
  private lastDecay: number | null = null;

  constructor(
    model: tf.LayersModel,
    readonly config: EmaConfig,
  ) {
    this.entries = modelWeights(model);
    this.avg = this.entries.map(({ w }) => tf.clone(w.read()));
  }

  /** Starts the average again from the model's weights as they are now (a resume from a checkpoint without one). */
  restart(): void {
    tf.dispose(this.avg);
    this.avg = this.entries.map(({ w }) => tf.clone(w.read()));
    this.updates = 0;
    this.lastDecay = null;
  }

  /** Optimizer steps averaged in so far. */
  get steps(): number {
    return this.updates;
  }

  /** One update after an applied optimizer step. */
  update(): void {
    const d = emaDecay(this.config, this.updates + 1);
    const next = tf.tidy(() =>
      this.avg.map((a, i) => {
        const w = this.entries[i].w.read();
        // integer weights are copied, as ModelEmaV3 copies non-float buffers
        if (w.dtype !== 'float32') return tf.clone(w);
        return tf.add(a, tf.mul(tf.sub(w, a), tf.scalar(1 - d)));
      }),
    );
    tf.dispose(this.avg);
    this.avg = next;
    this.updates += 1;
    this.lastDecay = d;
  }

  /**
   * Runs `fn` with the averaged weights in the model and puts the raw ones back afterwards, also when `fn` throws:
   * validation sees the EMA, training continues from exactly the weights it had.
   */
  async withAveragedWeights<T>(fn: () => Promise<T>): Promise<T> {
    const raw = this.entries.map(({ w }) => tf.clone(w.read()));
    try {
      this.entries.forEach(({ w }, i) => w.write(this.avg[i]));
      return await fn();
    } finally {
      this.entries.forEach(({ w }, i) => w.write(raw[i]));
      tf.dispose(raw);
    }
  }

  /** Puts the averaged weights into the model for good (what an `export: ema` run exports). */
  copyToModel(): void {
    this.entries.forEach(({ w }, i) => w.write(this.avg[i]));
  }

  /** The averaged weights as host arrays, in the model's weight order. */
  read(): WeightSnapshot {
    return this.avg.map((t, i) => ({
      name: this.entries[i].key,
      shape: t.shape.slice(),
      dtype: t.dtype as WeightCopy['dtype'],
      // slice(): dataSync may hand back the backend's own buffer
      values: (t.dataSync() as WeightCopy['values']).slice(),
    }));
  }

  getState(): EmaState {
    return { updates: this.updates, weights: this.read() };
  }

  setState(s: EmaState): void {
    const byName = new Map(s.weights.map((w) => [w.name, w]));
    const next = this.entries.map(({ key, w }) => {
      const c = byName.get(key);
      if (!c) throw new Error(`the checkpoint's weight EMA has no entry for ${key}`);
      if (c.shape.join('x') !== w.shape.join('x')) throw new Error(`the checkpoint's weight EMA has shape [${c.shape}] for ${key}, the model [${w.shape}]`);
      return tf.tensor(c.values, c.shape, c.dtype);
    });
    tf.dispose(this.avg);
    this.avg = next;
    this.updates = s.updates;
    this.lastDecay = s.updates > 0 ? emaDecay(this.config, s.updates) : null;
  }

  /**
   * `model` (the model's weights) and this average as one store, for the divergence guard: a rollback then puts back
   * the average (and its step count) of the step it rolls back to, not one that took in the wrecked step before the
   * divergence showed. The average's entries are named `ema:<weight>`, its count `ema:#updates`.
   */
  alongside(model: WeightStore): WeightStore {
    const UPDATES = `${EMA_PREFIX}#updates`;
    return {
      read: () => [
        ...model.read(),
        ...this.read().map((w) => ({ ...w, name: `${EMA_PREFIX}${w.name}` })),
        { name: UPDATES, shape: [1], dtype: 'int32', values: Int32Array.of(this.updates) },
      ],
      write: (snap) => {
        const own = (w: WeightCopy) => w.name.startsWith(EMA_PREFIX);
        model.write(snap.filter((w) => !own(w)));
        const updates = snap.find((w) => w.name === UPDATES);
        if (!updates) throw new Error('the rollback copy has no weight EMA in it');
        const weights = snap.filter((w) => own(w) && w.name !== UPDATES).map((w) => ({ ...w, name: w.name.slice(EMA_PREFIX.length) }));
        this.setState({ updates: updates.values[0], weights });
      },
    };
  }

  record(): EmaRecord {
    const { decay, warmup } = this.config;
    return { weights: this.config.export, decay, warmup, updates: this.updates, lastDecay: this.lastDecay };
  }

  dispose(): void {
    tf.dispose(this.avg);
    this.avg = [];
  }
}

/**
 * Updates the EMA after every applied step. afterStep never runs for a step that was cancelled (the divergence
 * guard's veto, a CancelStep from beforeStep), so a vetoed step never reaches the average.
 */
export class EmaCallback implements Callback {
  readonly name = 'weight EMA';
  readonly order = CALLBACK_ORDER.ema;
  constructor(private readonly ema: WeightEma) {}
  afterStep(): void {
    this.ema.update();
  }
}

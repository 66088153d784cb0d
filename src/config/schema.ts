/**
 * The job config: the one source of truth for every option's type, default and range. Each stage
 * owns the schema of its own section (optimizer, groups, lr/schedule/warmup/plateau); this file
 * composes them with the data, model and training sections and derives the TypeScript types.
 */
import { z } from 'zod';
import { optimizerSchema } from '../optim/schema';
import { groupingSchema, type GroupingInput } from '../groups/schema';
import { LrScheduleSchema, EarlyStoppingSchema } from '../schedules/schema';
import { CheckpointSchema, GuardSchema } from '../train/schema';
import { BACKENDS } from '../engine/backend-names';
import { TuneSchema } from '../tune/schema';
import { QUANTIZE_MODES } from '../export/quantize';
import { AugmentSchema, EmaSchema, EvalSchema, LossSchema, RECIPES } from '../data/augment-schema';

const posInt = z.number().int().positive();

export const DataSchema = z
  .object({
    /** Image folder: one sub-folder per class, or train/ val/ (test/) folders of class folders. */
    dir: z.string().min(1).default('data/flowers'),
    /** Fraction of each class held out for validation when the folder is not pre-split. */
    valFraction: z.number().min(0).max(0.9).default(0.2),
    /** Seed of the train/validation split (independent of the training seed, so tuning never reshuffles the split). */
    splitSeed: z.number().int().nonnegative().default(42),
    /** Declared pixels above which an image is refused unread (decompression bombs). */
    maxPixels: posInt.default(64 * 1024 * 1024),
    /** Decoded images kept in memory, MiB. */
    cacheMB: z.number().nonnegative().default(512),
    /** Random left-right flips of training images. */
    flip: z.boolean().default(true),
    /**
     * Short side, px, of the cached copy each image is decoded to once (aspect kept); training crops come from it.
     * Default ⌈size × 1.15⌉ (fastai's presizing, timm's crop_pct 0.875). Must be ≥ the input size.
     */
    presize: posInt.optional(),
    /** Training transforms (src/data/augment-schema.ts); absent: only `flip`. */
    augment: AugmentSchema.prefault({}),
    /** Class imbalance: `weights` (class-weighted loss) or `sampler` (balanced sampling). */
    balance: z.enum(['none', 'weights', 'sampler']).default('none'),
  })
  .strict();

export const ModelSchema = z
  .object({
    /** A tfjs LayersModel folder or model.json (local path; URLs via the model sources). */
    source: z.string().min(1).default('models/mobilenet_v1_0.25_224'),
    /** Square input size; default: the model's own. Convolutions accept any size; smaller trains faster. */
    size: z.number().int().min(32).max(1024).optional(),
    dropout: z.number().min(0).lt(1).default(0.2),
    /**
     * BatchNorm in trainable stages: `batch` (batch statistics, moving averages updated) or `frozen`
     * (stored statistics). Default chosen by measurement: see the README's table.
     */
    batchNorm: z.enum(['batch', 'frozen']).default('batch'),
    /** Keras-style BN momentum while training with batch statistics (PyTorch's default 0.1 is 0.9 here). */
    bnMomentum: z.number().min(0).lt(1).default(0.9),
  })
  .strict();

export const TrainSchema = z
  .object({
    epochs: posInt.default(5),
    batch: posInt.default(16),
    seed: z.number().int().nonnegative().default(1),
    /** Cached frozen-prefix activations kept in memory before spilling to the run folder, MiB. */
    featureCacheMB: z.number().nonnegative().default(1024),
    /** Report ‖Δw‖/‖w‖ per group each step (one small host read per step). */
    monitorRatios: z.boolean().default(true),
    /**
     * Batches whose gradients are averaged into one optimizer step: the effective batch is batch × accumulate,
     * and that is what linear scaling and warmup read.
     */
    accumulate: posInt.default(1),
    /**
     * Threads computing each batch's gradients on the wasm backend (data-parallel worker threads; BatchNorm
     * statistics are then per thread). `auto`: one per core, at most 4, at least 8 images each, and one for a model
     * too small to pay for a second (under MIN_MULTIPLY_ADDS_FOR_THREADS per image, src/engine/threads.ts). Native
     * backends spread their own kernels over the cores and ignore this.
     */
    threads: z.union([z.literal('auto'), posInt.max(16)]).default('auto'),
    /**
     * fastai's `fine_tune(epochs, freeze_epochs)`: when > 0, the run first trains this many epochs of one-cycle with
     * only the head's weights (and every BatchNorm's γ/β, fastai's train_bn) changing, then `epochs` more with
     * everything unfrozen; see src/train/fine-tune.ts. 0: one phase, as every run before this key.
     */
    freezeEpochs: z.number().int().nonnegative().default(0),
  })
  .strict();

/** Where and how the trained model is written. A bare string is the folder, as before this section existed. */
export const ExportSchema = z
  .object({
    /** Export folder; absent: `<out>/model`. */
    dir: z.string().min(1).optional(),
    /** Weight storage in model.json's manifest, decoded by plain `tf.loadLayersModel` (float16 needs tfjs >= 2.0.1). */
    quantize: z.enum(QUANTIZE_MODES).default('none'),
    /** Per-weight overrides: dtype -> fnmatch patterns on weight names (e.g. `uint16: ['dense*']`); the rest get `quantize`. */
    quantizeLayers: z
      .object({ float16: z.array(z.string().min(1)), uint16: z.array(z.string().min(1)), uint8: z.array(z.string().min(1)) })
      .partial()
      .strict()
      .default({}),
    /** Largest validation top-1 drop (a fraction, 0.01 = one point) a quantized export may show against float32. */
    maxTop1Drop: z.number().min(0).max(1).default(0.01),
    /** Beyond `maxTop1Drop`: `refuse` keeps the previous export and fails; `warn` writes it and says so. */
    onAccuracyDrop: z.enum(['refuse', 'warn']).default('refuse'),
    /**
     * The graph takes 0–255 RGB, its normalisation baked in as a frozen per-channel affine layer. Off by default:
     * consumers of earlier exports apply metadata.preprocessing themselves and would normalise twice.
     */
    bakePreprocessing: z.boolean().default(false),
    /**
     * BatchNorm folded into the convolution before it (one conv with a bias instead of conv + BN): fewer ops and
     * weights at inference, same logits within 1e-5. Off by default: the folded graph cannot be fine-tuned again
     * (its BatchNorm statistics and γ/β are gone), and weight names change (conv biases appear, `*_bn/*` vanish),
     * which breaks `quantizeLayers` patterns and consumers that read BN weights by name.
     */
    foldBatchNorm: z.boolean().default(false),
    /** `tm`: the graph takes Teachable Machine's input (x/127 − 1, centre square), for `@teachablemachine/image` apps. */
    format: z.enum(['tfjs', 'tm']).default('tfjs'),
  })
  .strict();

export const JobSchema = z
  .object({
    data: DataSchema.prefault({}),
    model: ModelSchema.prefault({}),
    train: TrainSchema.prefault({}),
    optimizer: optimizerSchema.prefault({}),
    /** Layer groups; absent = three groups stepped 10x at 0.001/0.01/0.1 (reference batch 256). */
    groups: groupingSchema,
    ...LrScheduleSchema.shape,
    /** Keras-style early stopping; absent: off. */
    earlyStopping: EarlyStoppingSchema.optional(),
    /** `<out>/checkpoints/`: last (for --resume), best, every N epochs. */
    checkpoint: CheckpointSchema.prefault({}),
    /** Divergence guard: roll back and cut the rates on NaN/Inf or a loss spike. */
    guard: GuardSchema.prefault({}),
    /** lr-find, the update/weight-ratio monitor, search and wd-auto settings (src/tune/schema.ts). */
    tune: TuneSchema.prefault({}),
    loss: LossSchema.prefault({}),
    /** How validation, evaluate and predict crop an image; recorded in metadata.json. */
    eval: EvalSchema.prefault({}),
    /** Weight EMA (timm ModelEmaV3); absent: off. */
    ema: EmaSchema.optional(),
    /** A named set of config values (classic, fastai, timm) that the job's own fields override one by one. */
    recipe: z.enum(RECIPES).optional(),
    backend: z.enum(BACKENDS).default('auto'),
    /** Run folder: metrics, logs, checkpoints; the export goes to `<out>/model` unless `export` says otherwise. */
    out: z.string().min(1).default('runs/latest'),
    export: z.preprocess((v) => (typeof v === 'string' ? { dir: v } : v), ExportSchema).prefault({}),
  })
  .strict()
  .superRefine((j, ctx) => {
    // with no model.size the input size is the model's own; the job runner checks presize again once it is known
    if (j.data.presize !== undefined && j.model.size !== undefined && j.data.presize < j.model.size) {
      ctx.addIssue({ code: 'custom', path: ['data', 'presize'], message: `${j.data.presize} is below the input size ${j.model.size}` });
    }
    // one-cycle's momentum drives momentum or Adam's beta1; plain SGD has neither (src/train/param-scheduler.ts)
    if (j.schedule.type === 'onecycle' && j.schedule.cycleMomentum && ['sgd', 'sgdw'].includes(j.optimizer.algorithm)) {
      ctx.addIssue({
        code: 'custom',
        path: ['schedule', 'cycleMomentum'],
        message: `optimizer.algorithm ${j.optimizer.algorithm} has no momentum to cycle; use momentum, nesterov, momentumw, lars, rmsprop, adam or adamw`,
      });
    }
  });

/**
 * What a caller writes: every section optional. `groups` is spelled out because its preprocess (which
 * fills in the stepped default) makes zod's input type a required `unknown`.
 */
export type JobInput = Omit<z.input<typeof JobSchema>, 'groups'> & { groups?: GroupingInput };
export type Job = z.infer<typeof JobSchema>;
export type ExportSettings = z.infer<typeof ExportSchema>;

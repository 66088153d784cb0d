/**
 * The shape of a checkpoint's state.json, checked when it is read back, so a hand-edited or damaged file is refused
 * with one line naming the field instead of failing later as `Cannot read properties of undefined`. Objects pass
 * unknown fields through: newer fields (and the sections other modules own) are checked where they are used.
 */
import { z } from 'zod';
import { ConfigError } from '../errors';
import { firstIssue } from '../export/metadata-schema';

const count = z.number().int().nonnegative();
const BlobEntrySchema = z.object({
  name: z.string(),
  shape: z.array(count),
  dtype: z.enum(['float32', 'int32', 'bool']),
  offset: count,
  bytes: count,
});

export const StateFileSchema = z
  .object({
    format: z.string(),
    version: z.number(),
    job: z.record(z.string(), z.unknown()),
    input: z.record(z.string(), z.unknown()),
    trainer: z
      .object({
        epoch: count,
        step: count,
        rng: z.number().int(),
        guard: z.object({}).passthrough().nullable(),
        history: z.array(z.object({}).passthrough()),
        stoppedEarly: z.string().nullable(),
      })
      .passthrough(),
    schedule: z.object({}).passthrough(),
    earlyStopping: z.object({}).passthrough().nullable(),
    best: z.object({}).passthrough().nullable(),
    weights: z.array(BlobEntrySchema),
    earlyStoppingBest: z.array(BlobEntrySchema).nullable(),
    optimizer: z
      .object({
        algorithm: z.string(),
        step: count,
        vars: z.record(z.string(), z.object({ step: count, slots: z.record(z.string(), BlobEntrySchema) })),
      })
      .passthrough(),
    ema: z
      .object({ updates: count, weights: z.array(BlobEntrySchema) })
      .nullable()
      .optional(),
  })
  .passthrough();

/** Throws a one-line ConfigError under `resume` when `state` (parsed from `file`) is not a checkpoint's state. */
export function checkStateShape(state: unknown, file: string): void {
  const r = StateFileSchema.safeParse(state);
  if (!r.success) throw new ConfigError('resume', `${file}: bad checkpoint state: ${firstIssue(r.error)}`);
}

/**
 * The shape of an export's metadata.json, checked when it is read back: a hand-edited or damaged file is refused
 * with one line naming the field, rather than a crash in preprocessing or predictions under invented `class_N` names.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { ModelFormatError } from '../errors';
import { EvalSchema } from '../data/augment-schema';
import { INPUT_CONVENTIONS } from './input-affine';

const PreprocessSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('scale'), low: z.number().finite(), high: z.number().finite() }).passthrough(),
  z
    .object({ kind: z.literal('normalize'), mean: z.array(z.number().finite()).length(3), std: z.array(z.number().finite().positive()).length(3) })
    .passthrough(),
]);

export const ExportMetadataSchema = z
  .object({
    layertuneVersion: z.string(),
    labels: z.array(z.string().min(1)).min(1),
    // the range train accepts (model.size), so nothing outside it was ever exported
    inputSize: z.number().int().min(32).max(1024),
    preprocessing: PreprocessSchema,
    // absent in exports written before the graph could carry its own normalisation
    inputConvention: z.enum(INPUT_CONVENTIONS).optional(),
    backbone: z.object({ arch: z.string(), source: z.string() }).passthrough(),
    // absent in exports written before eval.crop: those were validated on stretched photos (fill)
    evalCrop: z.object({ mode: EvalSchema.shape.crop.unwrap(), cropPct: EvalSchema.shape.cropPct.unwrap() }).strict().optional(),
    createdAt: z.string(),
  })
  .passthrough();

/** The first problem of a zod result as `field.path: message`. */
export function firstIssue(e: z.ZodError): string {
  const i = e.issues[0];
  return `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`;
}

/**
 * Reads and validates `file`; `outputs` is the model's output width, which must equal the number of labels.
 * The returned object keeps any extra fields (trainingConfig, metrics) as they were written.
 */
export function readExportMetadata(file: string, outputs: number): z.infer<typeof ExportMetadataSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ModelFormatError(file, `not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const r = ExportMetadataSchema.safeParse(raw);
  if (!r.success) throw new ModelFormatError(file, `bad metadata: ${firstIssue(r.error)}`);
  if (r.data.labels.length !== outputs) {
    throw new ModelFormatError(file, `bad metadata: ${r.data.labels.length} labels for a model with ${outputs} outputs`);
  }
  return r.data;
}

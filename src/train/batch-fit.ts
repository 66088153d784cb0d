/**
 * The batch a run really uses, settled before the learning rates are scaled: linear scaling multiplies every rate by
 * batch × accumulate / baseBatch, so a nominal batch the data or the memory cannot deliver would scale the rates for
 * a batch that never happens (`--batch 100000` on 9 images scaled them ×390 and diverged).
 */
import { ConfigError } from '../errors';
import { estimateMemory, formatBytes, largestBatch, type ModelCounts } from './memory-estimate';

export interface BatchFit {
  batch: number;
  accumulate: number;
  warnings: string[];
}

export interface BatchFitInput {
  batch: number;
  accumulate: number;
  trainImages: number;
  model: ModelCounts;
  optimizerSlots: number;
  size: number;
  budget: { bytes: number; limitedBy: string };
}

/** The smallest divisor k of `batch` with batch / k ≤ max: accumulating k smaller batches keeps the effective batch. */
function splitFactor(batch: number, max: number): number {
  for (let k = 1; k <= batch; k++) if (batch % k === 0 && batch / k <= max) return k;
  return batch;
}

/**
 * The data's part of the fit: a batch no larger than the training set, and no more accumulated batches than an
 * epoch holds. Pure; `search` reads it too, so a trial's rates are scaled for the batch the trial really runs.
 */
export function clampBatchToData(batch: number, accumulate: number, trainImages: number): BatchFit {
  const warnings: string[] = [];
  if (trainImages > 0 && batch > trainImages) {
    warnings.push(
      `train.batch ${batch} is larger than the ${trainImages} training images; using batch ${trainImages}, and the learning rates are scaled for it`,
    );
    batch = trainImages;
  }
  const batchesPerEpoch = Math.max(1, Math.ceil(trainImages / batch));
  if (accumulate > batchesPerEpoch) {
    // a step never spans two epochs, so more accumulated batches than an epoch holds never happen
    warnings.push(`train.accumulate ${accumulate} is more than the ${batchesPerEpoch} batch(es) of an epoch; using ${batchesPerEpoch}`);
    accumulate = batchesPerEpoch;
  }
  return { batch, accumulate, warnings };
}

export function fitBatch(x: BatchFitInput): BatchFit {
  const clamped = clampBatchToData(x.batch, x.accumulate, x.trainImages);
  const { warnings } = clamped;
  const { batch, accumulate } = clamped;
  const est = estimateMemory(x.model, batch, x.optimizerSlots);
  if (est.total <= x.budget.bytes) return { batch, accumulate, warnings };
  const fits = largestBatch(x.model, x.optimizerSlots, x.budget.bytes);
  const what = `size ${x.size} at batch ${batch} needs about ${formatBytes(est.total)} (activations ${formatBytes(est.activationsPerImage)} per image), over ${formatBytes(x.budget.bytes)}, ${x.budget.limitedBy}`;
  if (fits < 1) throw new ConfigError('train.batch', `${what}; not even one image fits: lower model.size`);
  const k = splitFactor(batch, fits);
  warnings.push(`${what}; using batch ${batch / k} × accumulate ${accumulate * k} (the same effective batch ${batch * accumulate})`);
  return { batch: batch / k, accumulate: accumulate * k, warnings };
}

/**
 * Evaluating the shared PyTorch reference (`reference/schedules.json` format) through the public API.
 * A case's `spec` maps onto LrScheduleConfig almost field for field; the mapping below is the whole translation.
 */
import { LrSchedule } from './controller';
import { resolveSchedule } from './resolve';
import type { RunShape } from './scaling';
import { parseLrScheduleConfig, type LrScheduleInput } from './schema';

export interface ReferenceCase {
  name: string;
  spec: Record<string, unknown>;
  /** lr[t]: the rate used in step/epoch t. */
  lr: number[];
  /** metric[t]: reported after epoch t (plateau cases). */
  metric?: number[];
  stopAfterEpoch?: number;
  note?: string;
}

export interface ReferenceFile {
  about?: string;
  cases: ReferenceCase[];
}

export interface ReferenceJob {
  /** Input for parseLrScheduleConfig, which validates it: a spec with an unknown field fails there, by name. */
  config: LrScheduleInput;
  run: RunShape;
}

export interface CaseResult {
  name: string;
  maxRelErr: number;
  stopAfterEpoch: number | null;
  ok: boolean;
  error?: string;
  /** The rates we computed, one per listed step/epoch that ran. */
  lr: number[];
}

const REFERENCE_BATCH = 256;

/**
 * Map a reference spec onto our config and run shape. `length` is how many steps/epochs the case lists.
 * - `lr0` is `lr.base`; the remaining fields of a base schedule keep their names.
 * - `plateau` is a constant schedule with a plateau stage; a spec without `maxReductions` or `stopAtFraction` is
 *   plain PyTorch, so our stop rule on top of it is switched off (our default stopAtFraction is 1/1024).
 * - `warmup+<schedule>` (Goyal): baseLr/baseBatch/batch/scaling → lr and run, warmupEpochs → warmup.epochs,
 *   milestonesEpochs → milestones counted in epochs; its lr is listed per step.
 */
export function referenceSpecToJob(spec: Record<string, unknown>, length: number): ReferenceJob {
  const { type, ...rest } = spec;
  if (type === 'plateau') {
    const { lr0, maxReductions = null, stopAtFraction = null, ...plateau } = rest;
    return {
      config: { lr: { base: lr0 as number }, plateau: { ...plateau, maxReductions, stopAtFraction } } as LrScheduleInput,
      run: { batch: REFERENCE_BATCH, stepsPerEpoch: 1, epochs: length },
    };
  }
  if (typeof type === 'string' && type.startsWith('warmup+')) {
    const { baseLr, baseBatch, batch, scaling, warmupEpochs, stepsPerEpoch, milestonesEpochs, per, ...schedule } = rest;
    void per; // the listing unit: always per step here, derived from stepsPerEpoch
    const spe = (stepsPerEpoch as number | undefined) ?? 1;
    const inEpochs = milestonesEpochs !== undefined ? { milestones: milestonesEpochs, per: 'epoch' } : {};
    return {
      config: {
        lr: { base: baseLr, baseBatch, scaling },
        warmup: { type: 'linear', epochs: warmupEpochs },
        schedule: { type: type.slice('warmup+'.length), ...schedule, ...inEpochs },
      } as LrScheduleInput,
      run: { batch: batch as number, stepsPerEpoch: spe, epochs: Math.ceil(length / spe) },
    };
  }
  const { lr0, ...schedule } = rest;
  return {
    config: { lr: { base: lr0 }, schedule: { type, ...schedule } } as LrScheduleInput,
    run: { batch: REFERENCE_BATCH, stepsPerEpoch: 1, epochs: length },
  };
}

/** Evaluate one case through parse → resolve → LrSchedule, feeding `metric` to plateau cases. */
export function evaluateReferenceCase(c: ReferenceCase, tolerance = 1e-9): CaseResult {
  const expectedStop = c.stopAfterEpoch ?? null;
  try {
    const job = referenceSpecToJob(c.spec, c.lr.length);
    const schedule = new LrSchedule(resolveSchedule(parseLrScheduleConfig(job.config, 'spec'), job.run));
    const ours: number[] = [];
    let stopAfterEpoch: number | null = null;
    if (c.metric) {
      const monitor = schedule.monitor ?? 'metric';
      for (let epoch = 0; epoch < c.metric.length; epoch++) {
        ours.push(schedule.lr(epoch, epoch));
        const r = schedule.onEpochEnd(epoch, { [monitor]: c.metric[epoch] });
        if (r.stop) {
          stopAfterEpoch = epoch;
          break;
        }
      }
    } else {
      const spe = job.run.stepsPerEpoch;
      for (let step = 0; step < c.lr.length; step++) ours.push(schedule.lr(step, Math.floor(step / spe)));
    }
    let maxRelErr = 0;
    for (let i = 0; i < Math.min(ours.length, c.lr.length); i++) {
      const ref = c.lr[i];
      const err = Math.abs(ours[i] - ref) / (ref === 0 ? 1 : Math.abs(ref));
      maxRelErr = Number.isNaN(err) ? Infinity : Math.max(maxRelErr, err);
    }
    const problems: string[] = [];
    if (ours.length !== c.lr.length) problems.push(`ran ${ours.length} steps/epochs, reference lists ${c.lr.length}`);
    if (stopAfterEpoch !== expectedStop) problems.push(`stopAfterEpoch ${stopAfterEpoch}, expected ${expectedStop}`);
    if (!(maxRelErr <= tolerance)) problems.push(`maxRelErr ${maxRelErr} > ${tolerance}`);
    return {
      name: c.name,
      maxRelErr,
      stopAfterEpoch,
      ok: problems.length === 0,
      ...(problems.length ? { error: problems.join('; ') } : {}),
      lr: ours,
    };
  } catch (e) {
    return { name: c.name, maxRelErr: Infinity, stopAfterEpoch: null, ok: false, error: (e as Error).message, lr: [] };
  }
}

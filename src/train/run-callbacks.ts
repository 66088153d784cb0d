/**
 * The built-in callbacks of a training run, as factories bound to the container's `TOKENS.RunCallbacks`
 * multi-binding: ratio monitor, weight-decay schedule, momentum schedule (one-cycle or fastai's two phases),
 * early stopping and the signal handler. Each gets the run's context and returns the callbacks it contributes
 * (none when its part of the job is off), so a user can unbind, replace or add one like any other stage. The loop
 * runs every callback by its `order` (CALLBACK_ORDER), not by its place in the list.
 */
import type { Job } from '../config/schema';
import type { GroupedOptimizer } from '../optim/grouped-optimizer';
import { EarlyStopping } from '../schedules/early-stopping';
import type { ModelWeights } from '../schedules/weights';
import { WeightDecaySchedule } from '../tune/rules';
import type { Callback } from './callbacks';
import { EarlyStoppingCallback, type MetricsOf } from './early-stopping';
import { type FineTune, fineTuneMomentum } from './fine-tune';
import { oneCycleMomentum } from './param-scheduler';
import { RatioMonitor } from './ratio-monitor';
import { InterruptOnSignal } from './signals';

/** What a run knows when it assembles its callbacks. */
export interface RunContext {
  job: Job;
  optimizer: GroupedOptimizer;
  stepsPerEpoch: number;
  /** Optimizer steps of the whole run as the LR schedule resolved it (what one-cycle spans). */
  totalSteps: number;
  /** fastai's two-phase run, when `train.freezeEpochs` asks for one. */
  fineTune: FineTune | null;
  /** The model's weights, for early stopping's restoreBestWeights copy. */
  weights: ModelWeights;
  /** A resumed run keeps the restored counters of its stateful callbacks. */
  resumed: boolean;
  metricsOf: MetricsOf;
  /** Turn SIGINT/SIGTERM into a checkpointed stop (the CLI asks for it). */
  handleSignals: boolean;
  log: (line: string) => void;
}

export interface CallbackFactory {
  create(ctx: RunContext): Callback[];
}

/** Update/weight ratios per group, when `train.monitorRatios` is on. */
export class RatioMonitorCallbacks implements CallbackFactory {
  create({ job, optimizer, log }: RunContext): Callback[] {
    return job.train.monitorRatios ? [new RatioMonitor(job.tune.ratioMonitor, { optimizer, log })] : [];
  }
}

/** `tune.wdSchedule`: weight decay over the run, through the generic hyper-parameter scheduler. */
export class WeightDecayScheduleCallbacks implements CallbackFactory {
  create({ job, optimizer, stepsPerEpoch, fineTune }: RunContext): Callback[] {
    if (!job.tune.wdSchedule) return [];
    const { batch, accumulate, epochs } = job.train;
    return [new WeightDecaySchedule(job.tune.wdSchedule, { batch, accumulate, stepsPerEpoch, epochs: fineTune?.plan.totalEpochs ?? epochs }, optimizer)];
  }
}

/** Momentum (Adam's beta1) cycled against the rate: fastai's two phases, or `schedule.cycleMomentum` under one-cycle. */
export class MomentumCallbacks implements CallbackFactory {
  create({ job, optimizer, fineTune, totalSteps }: RunContext): Callback[] {
    if (fineTune) return [fineTune, ...fineTuneMomentum(fineTune.plan, job, optimizer)];
    const s = job.schedule;
    return s.type === 'onecycle' && s.cycleMomentum ? [oneCycleMomentum(s, s.totalSteps ?? totalSteps, job.optimizer.algorithm, optimizer)] : [];
  }
}

/** Keras-style early stopping, when the job has an `earlyStopping` section. */
export class EarlyStoppingCallbacks implements CallbackFactory {
  create({ job, weights, resumed, log, metricsOf }: RunContext): Callback[] {
    return job.earlyStopping ? [new EarlyStoppingCallback(new EarlyStopping(job.earlyStopping, weights), resumed, log, metricsOf)] : [];
  }
}

/** SIGINT/SIGTERM finish the epoch, checkpoint and exit with a resume hint, when the caller asks for it. */
export class SignalCallbacks implements CallbackFactory {
  create({ job, handleSignals }: RunContext): Callback[] {
    return handleSignals ? [new InterruptOnSignal({ runDir: job.out })] : [];
  }
}

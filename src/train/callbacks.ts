/** What the loop tells plug-ins; fastai-style: the loop stays small, behaviours live here. */
export interface BatchInfo {
  epoch: number;
  /** Global optimizer step, counted from 0 at the start of the run. */
  step: number;
  batchInEpoch: number;
  batchesPerEpoch: number;
  loss: number;
  accuracy: number;
  examples: number;
  /** Effective learning rate of each group for this step. */
  lrs: Record<string, number>;
  /** ‖Δw‖/‖w‖ per group, when the optimizer reported norms. */
  updateRatios?: Record<string, number>;
}

export interface EpochMetrics {
  loss: number;
  accuracy: number;
}

export interface EpochInfo {
  epoch: number;
  step: number;
  train: EpochMetrics;
  val?: EpochMetrics;
  seconds: number;
  numTensors: number;
  lrs: Record<string, number>;
}

export interface StopRequest {
  stop: boolean;
  reason?: string;
}

/**
 * Where a callback runs among the others at every event: lower first, equal orders in the order given. The
 * built-in ones leave room around them; a callback without an `order` runs at DEFAULT, after the monitors and
 * early stopping and before the signal handler, which must close the loop last.
 */
export const CALLBACK_ORDER = {
  progress: 0,
  metricsLog: 1,
  sweep: 5,
  ratioMonitor: 10,
  weightDecaySchedule: 15,
  earlyStopping: 20,
  medianStop: 20,
  DEFAULT: 50,
  /** Its onTrainEnd throws the InterruptedError, so every other callback has closed its files before it. */
  signals: 100,
} as const;

/** The callbacks sorted by `order` (a stable sort: equal orders keep the order given). */
export function inCallbackOrder(callbacks: readonly Callback[]): Callback[] {
  return callbacks
    .map((cb, i) => ({ cb, i, order: cb.order ?? CALLBACK_ORDER.DEFAULT }))
    .sort((a, b) => a.order - b.order || a.i - b.i)
    .map((x) => x.cb);
}

export interface Callback {
  /** Names the callback in logs and errors. */
  readonly name?: string;
  /** Where it runs among the others (CALLBACK_ORDER); default CALLBACK_ORDER.DEFAULT. */
  readonly order?: number;
  /** `startStep`: the optimizer steps already done (non-zero on a resumed run). */
  onTrainBegin?(info: { epochs: number; batchesPerEpoch: number; startEpoch: number; startStep: number }): void | Promise<void>;
  onEpochBegin?(epoch: number): void | Promise<void>;
  /** Returning {stop: true} ends training after this step (the LR finder stops mid-epoch). */
  onBatchEnd?(info: BatchInfo): void | StopRequest | Promise<void | StopRequest>;
  /** Returning {stop: true} ends training after this epoch. */
  onEpochEnd?(info: EpochInfo): void | StopRequest | Promise<void | StopRequest>;
  onTrainEnd?(summary: { epochs: number; stoppedEarly?: string }): void | Promise<void>;
}

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

export interface Callback {
  onTrainBegin?(info: { epochs: number; batchesPerEpoch: number; startEpoch: number }): void | Promise<void>;
  onEpochBegin?(epoch: number): void | Promise<void>;
  /** Returning {stop: true} ends training after this step (the LR finder stops mid-epoch). */
  onBatchEnd?(info: BatchInfo): void | StopRequest | Promise<void | StopRequest>;
  /** Returning {stop: true} ends training after this epoch. */
  onEpochEnd?(info: EpochInfo): void | StopRequest | Promise<void | StopRequest>;
  onTrainEnd?(summary: { epochs: number; stoppedEarly?: string }): void | Promise<void>;
}

import type { EpochInfo } from './callbacks';
import type { GuardState } from './guard';

/** The trainer's own resumable state. */
export interface TrainerState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** The data-order RNG's whole state (one 32-bit integer). */
  rng: number;
  guard: GuardState | null;
  history: EpochInfo[];
  /** Set when the plateau rule or early stopping ended the run: resuming it does not train further. */
  stoppedEarly: string | null;
}

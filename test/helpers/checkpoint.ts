import type { Checkpoint } from '../../src/train/checkpoint/format';

/**
 * The smallest checkpoint the store accepts: the reliability tests only need real files on disk to
 * corrupt, edit or stat, not a trained network.
 */
export function tinyCheckpoint(parts: Pick<Checkpoint, 'weights' | 'optimizer'> & { step?: number }): Checkpoint {
  const step = parts.step ?? 3;
  return {
    job: {},
    input: {},
    trainer: { epoch: step === 0 ? 0 : 1, step, rng: step === 0 ? 1 : 7, guard: null, history: [], stoppedEarly: null },
    schedule: {} as Checkpoint['schedule'],
    earlyStopping: null,
    best: null,
    weights: parts.weights,
    optimizer: parts.optimizer,
  };
}

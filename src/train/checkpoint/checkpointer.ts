/**
 * The per-epoch checkpoint writer: after each committed epoch it captures every part registered in the run's
 * StateRegistry and writes best, every-N and last, each atomically.
 */
import * as path from 'node:path';
import type { StateRegistry } from '../../stateful';
import type { CheckpointConfig } from '../schema';
import type { EpochInfo } from '../callbacks';
import type { BestJudge } from './best';
import type { Checkpoint } from './format';
import { checkpointsDir, epochCheckpointName, saveCheckpoint } from './store';

/** What a checkpoint says about the run besides the parts' states. */
export type CheckpointMeta = Pick<Checkpoint, 'job' | 'input' | 'provenance'>;

export class Checkpointer {
  /** Folders written, for logs and tests. */
  readonly written: string[] = [];
  constructor(
    private readonly cfg: CheckpointConfig,
    private readonly runDir: string,
    private readonly meta: CheckpointMeta,
    private readonly state: StateRegistry,
    private readonly judge: BestJudge | null,
  ) {}

  /**
   * Best first, then every-N, then last, so that a crash between two writes never leaves `last` pointing past
   * what `best` holds. The judge runs before the capture: the `best` part then already counts this epoch.
   */
  async onEpochCommitted(info: EpochInfo): Promise<void> {
    const isBest = this.judge?.isBest(info) && this.cfg.best;
    const epochsDone = info.epoch + 1;
    const every = this.cfg.everyEpochs > 0 && epochsDone % this.cfg.everyEpochs === 0;
    if (!isBest && !every && !this.cfg.last) return;
    const ck = { ...this.state.capture(), ...this.meta } as Checkpoint;
    const root = checkpointsDir(this.runDir);
    const targets = [isBest && 'best', every && epochCheckpointName(epochsDone), this.cfg.last && 'last'].filter((x): x is string => typeof x === 'string');
    for (const t of targets) {
      await saveCheckpoint(path.join(root, t), ck);
      this.written.push(t);
    }
  }
}

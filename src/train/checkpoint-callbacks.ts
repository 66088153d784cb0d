/**
 * The epoch-end policies that keep "the best so far": early stopping (a Callback around the schedules area's
 * EarlyStopping) and the Checkpointer (the trainer's onEpochCommitted hook writing checkpoints/).
 */
import * as path from 'node:path';
import type { EarlyStopping } from '../schedules/early-stopping';
import type { WeightSnapshot, WeightStore } from '../schedules/weights';
import { CALLBACK_ORDER, CancelFit, type Callback, type EpochInfo } from './callbacks';
import { type BestTracker, checkpointsDir, epochCheckpointName, saveCheckpoint, type BestState, type Checkpoint, type CheckpointConfig } from './checkpoint';
import type { Trainer } from './trainer';

/** The metrics an epoch reports, by the names `monitor` fields use. */
export function epochMetrics(info: EpochInfo): Record<string, number> {
  const m: Record<string, number> = { loss: info.train.loss, accuracy: info.train.accuracy };
  if (info.val) Object.assign(m, { val_loss: info.val.loss, val_accuracy: info.val.accuracy });
  return m;
}

export type MetricsOf = (info: EpochInfo) => Record<string, number>;

/**
 * For runs without validation images: `val_loss`/`val_accuracy` read the training metrics, so the default
 * monitors (val_loss) still work. runJob says so once, at the start.
 */
export function metricsWithTrainAsVal(m: Record<string, number>): Record<string, number> {
  return 'val_loss' in m ? m : { ...m, val_loss: m.loss, val_accuracy: m.accuracy };
}

/**
 * A WeightStore that remembers the last snapshot it handed out. EarlyStopping reads weights exactly when it
 * takes a new best, so `last` is its restoreBestWeights copy, which a checkpoint must carry for an exact resume.
 */
export class RecordingWeightStore implements WeightStore {
  last: WeightSnapshot | null = null;
  constructor(private readonly inner: WeightStore) {}
  read(): WeightSnapshot {
    this.last = this.inner.read();
    return this.last;
  }
  write(s: WeightSnapshot): void {
    this.inner.write(s);
  }
}

/** Keras-style early stopping as a Callback; `resumed` keeps the restored counters instead of resetting them. */
export class EarlyStoppingCallback implements Callback {
  readonly name = 'early stopping';
  readonly order = CALLBACK_ORDER.earlyStopping;
  /** Whether the epoch just ended set a new best (read by the Checkpointer). */
  lastIsBest = false;
  constructor(
    readonly es: EarlyStopping,
    private readonly resumed: boolean,
    private readonly log: (line: string) => void,
    private readonly metricsOf: MetricsOf = epochMetrics,
  ) {}
  beforeFit(): void {
    if (!this.resumed) this.es.onTrainBegin();
  }
  afterEpoch(info: EpochInfo): void {
    const d = this.es.onEpochEnd(info.epoch, this.metricsOf(info));
    this.lastIsBest = d.isBest;
    if (d.stop) throw new CancelFit(d.reason ?? 'stopped by a callback');
  }
  afterFit(): void {
    const r = this.es.onTrainEnd();
    if (r.restored) this.log(`early stopping: restored the weights of epoch ${r.bestEpoch + 1}, the best one`);
  }
}

/** Which epochs are "best": early stopping's verdict when it is on, else a plain tracker of one metric. */
export interface BestJudge {
  isBest(info: EpochInfo): boolean;
  state(): BestState | null;
}

export function trackerJudge(tracker: BestTracker, metricsOf: MetricsOf = epochMetrics): BestJudge {
  return { isBest: (info) => tracker.update(info.epoch, metricsOf(info)), state: () => tracker.getState() };
}

export function earlyStoppingJudge(
  cb: EarlyStoppingCallback,
  monitor: string,
  mode: 'min' | 'max',
  restored: BestState | null = null,
  metricsOf: MetricsOf = epochMetrics,
): BestJudge {
  let last: BestState = restored ?? { monitor, mode, value: null, epoch: -1 };
  return {
    isBest(info) {
      if (cb.lastIsBest) last = { monitor, mode, value: metricsOf(info)[monitor] ?? null, epoch: info.epoch };
      return cb.lastIsBest;
    },
    state: () => ({ ...last }),
  };
}

/**
 * Writes checkpoints after each committed epoch: best first, then every-N, then last, each atomically, so that a
 * crash between two writes never leaves `last` pointing past what `best` holds.
 */
export class Checkpointer {
  /** Folders written, for logs and tests. */
  readonly written: string[] = [];
  constructor(
    private readonly cfg: CheckpointConfig,
    private readonly runDir: string,
    private readonly capture: (trainer: Trainer) => Omit<Checkpoint, 'best'>,
    private readonly judge: BestJudge | null,
  ) {}

  async onEpochCommitted(trainer: Trainer, info: EpochInfo): Promise<void> {
    const isBest = this.judge?.isBest(info) && this.cfg.best;
    const epochsDone = info.epoch + 1;
    const every = this.cfg.everyEpochs > 0 && epochsDone % this.cfg.everyEpochs === 0;
    if (!isBest && !every && !this.cfg.last) return;
    const ck: Checkpoint = { ...this.capture(trainer), best: this.judge ? this.judge.state() : null };
    const root = checkpointsDir(this.runDir);
    const targets = [isBest && 'best', every && epochCheckpointName(epochsDone), this.cfg.last && 'last'].filter((x): x is string => typeof x === 'string');
    for (const t of targets) {
      await saveCheckpoint(path.join(root, t), ck);
      this.written.push(t);
    }
  }
}

/** Early stopping in the loop: the schedules area's EarlyStopping as a Callback, and the metrics it reads. */
import type { EarlyStopping } from '../schedules/early-stopping';
import { CALLBACK_ORDER, CancelFit, type Callback, type EpochInfo } from './callbacks';

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
 * Keras-style early stopping as a Callback; `resumed` keeps the restored counters instead of resetting them. Its
 * checkpoint parts are `es` itself (the counters) and `es.bestWeightsState` (restoreBestWeights's copy).
 */
export class EarlyStoppingCallback implements Callback {
  readonly name = 'early stopping';
  readonly order = CALLBACK_ORDER.earlyStopping;
  /** Whether the epoch just ended set a new best (read by the best-checkpoint judge). */
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

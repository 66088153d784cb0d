import { AppendFile } from '../io/write';
import { CALLBACK_ORDER, type BatchInfo, type Callback, type EpochInfo } from './callbacks';

/** Appends one JSON object per step and per epoch to `<run>/metrics.jsonl` (what reports and tools read). */
export class MetricsLogCallback implements Callback {
  readonly name = 'metrics log';
  readonly order = CALLBACK_ORDER.metricsLog;
  private out: AppendFile | null = null;
  constructor(
    private readonly file: string,
    private readonly append = false,
  ) {}

  beforeFit(): void {
    this.out = new AppendFile(this.file, this.append);
  }
  private write(obj: unknown): void {
    this.out?.write(`${JSON.stringify(obj)}\n`);
  }
  afterStep(b: BatchInfo): void {
    this.write({ type: 'step', epoch: b.epoch, step: b.step, loss: b.loss, accuracy: b.accuracy, lrs: b.lrs, updateRatios: b.updateRatios });
  }
  afterEpoch(e: EpochInfo): void {
    this.write({ type: 'epoch', ...e });
  }
  afterFit(s: { epochs: number; stoppedEarly?: string }): void {
    this.write({ type: 'end', ...s });
    this.out?.close();
    this.out = null;
  }
}

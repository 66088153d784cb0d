import * as fs from 'node:fs';
import type { BatchInfo, Callback, EpochInfo } from './callbacks';

/** Appends one JSON object per step and per epoch to `<run>/metrics.jsonl` (what reports and tools read). */
export class MetricsLogCallback implements Callback {
  private fd: number | null = null;
  constructor(private readonly file: string, private readonly append = false) {}

  onTrainBegin(): void {
    this.fd = fs.openSync(this.file, this.append ? 'a' : 'w');
  }
  private write(obj: unknown): void {
    if (this.fd !== null) fs.writeSync(this.fd, JSON.stringify(obj) + '\n');
  }
  onBatchEnd(b: BatchInfo): void {
    this.write({ type: 'step', epoch: b.epoch, step: b.step, loss: b.loss, accuracy: b.accuracy, lrs: b.lrs, updateRatios: b.updateRatios });
  }
  onEpochEnd(e: EpochInfo): void {
    this.write({ type: 'epoch', ...e });
  }
  onTrainEnd(s: { epochs: number; stoppedEarly?: string }): void {
    this.write({ type: 'end', ...s });
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

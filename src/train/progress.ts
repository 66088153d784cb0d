import cliProgress from 'cli-progress';
import { CALLBACK_ORDER, type BatchInfo, type Callback, type EpochInfo } from './callbacks';

const fmt = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

/**
 * One progress bar per epoch (loss, accuracy, throughput, ETA, the largest update ratio), then a
 * line with validation metrics. On a non-TTY (CI, pipes) only the epoch lines are printed.
 */
export class ProgressCallback implements Callback {
  readonly name = 'progress';
  readonly order = CALLBACK_ORDER.progress;
  private bar: cliProgress.SingleBar | null = null;
  private t0 = 0;
  private seen = 0;
  private lossSum = 0;
  private hits = 0;
  private epochs = 0;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly log: (s: string) => void = (s) => console.log(s),
  ) {}

  beforeFit(info: { epochs: number }): void {
    this.epochs = info.epochs;
  }

  beforeEpoch(epoch: number): void {
    this.t0 = Date.now();
    this.seen = this.lossSum = this.hits = 0;
    if (this.out.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          stream: this.out,
          format: `epoch ${epoch + 1}/${this.epochs} [{bar}] {value}/{total} | loss {loss} acc {acc} | {ips} img/s | ratio {ratio} | ETA {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  afterStep(b: BatchInfo): void {
    this.seen += b.examples;
    this.lossSum += b.loss * b.examples;
    this.hits += b.accuracy * b.examples;
    const ratios = b.updateRatios ? Object.values(b.updateRatios) : [];
    const payload = {
      loss: fmt(this.lossSum / this.seen),
      acc: fmt(this.hits / this.seen),
      ips: fmt(this.seen / ((Date.now() - this.t0) / 1000), 1),
      ratio: ratios.length ? Math.max(...ratios).toExponential(1) : '-',
    };
    if (this.bar) {
      if (b.batchInEpoch === 0) this.bar.start(b.batchesPerEpoch, 0, payload);
      this.bar.update(b.batchInEpoch + 1, payload);
    }
  }

  afterEpoch(e: EpochInfo): void {
    this.bar?.stop();
    this.bar = null;
    // a run with a weight EMA validates the average, not the weights it trains: the line says which
    const val = e.val ? ` | val${e.valWeights === 'ema' ? ' (EMA)' : ''} loss ${fmt(e.val.loss)} acc ${fmt(e.val.accuracy)}` : '';
    this.log(
      `epoch ${e.epoch + 1}/${this.epochs}: loss ${fmt(e.train.loss)} acc ${fmt(e.train.accuracy)}${val} | ${fmt(e.seconds, 1)}s | tensors ${e.numTensors}`,
    );
  }
}

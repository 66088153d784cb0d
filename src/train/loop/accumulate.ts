/**
 * Gradient accumulation: `accumulate` forward passes, weighted by their image counts, make one optimizer step. The
 * sum is kept as Σ nᵢ·gᵢ so a short last batch weighs what it holds; a step of one batch at accumulate 1 passes
 * the batch's own mean gradient through untouched (bit for bit what training without accumulation does).
 */
import * as tf from '@tensorflow/tfjs';

export interface AccumulatedStep {
  /** The image-weighted mean gradient; the caller disposes it. */
  grads: Record<string, tf.Tensor>;
  examples: number;
  lossSum: number;
  hits: number;
}

export class GradientAccumulator {
  private sum: Record<string, tf.Tensor> | null = null;
  private examples = 0;
  private lossSum = 0;
  private hits = 0;
  /** Forward passes in the step being built. */
  micro = 0;

  constructor(readonly accumulate: number) {
    if (!Number.isInteger(accumulate) || accumulate < 1) throw new RangeError(`accumulate must be a positive integer, got ${accumulate}`);
  }

  /** Takes ownership of `grads`. */
  add(grads: Record<string, tf.Tensor>, examples: number, loss: number, hits: number): void {
    if (!this.sum) {
      this.sum = this.accumulate > 1 ? tf.tidy(() => mapValues(grads, (g) => tf.mul(g, examples))) : grads;
      if (this.sum !== grads) tf.dispose(grads);
    } else {
      const prev = this.sum;
      this.sum = tf.tidy(() => mapValues(prev, (g, k) => (grads[k] ? tf.add(g, tf.mul(grads[k], examples)) : tf.clone(g))));
      tf.dispose([prev, grads]);
    }
    this.examples += examples;
    this.lossSum += loss * examples;
    this.hits += hits;
    this.micro += 1;
  }

  get full(): boolean {
    return this.micro === this.accumulate;
  }

  get empty(): boolean {
    return this.micro === 0;
  }

  get pendingExamples(): number {
    return this.examples;
  }

  /** The step's mean gradient and totals; the accumulator starts over. */
  take(): AccumulatedStep {
    const sum = this.sum!;
    const examples = this.examples;
    const grads = this.micro === 1 && this.accumulate === 1 ? sum : tf.tidy(() => mapValues(sum, (g) => tf.div(g, examples)));
    if (grads !== sum) tf.dispose(sum);
    const out = { grads, examples, lossSum: this.lossSum, hits: this.hits };
    this.reset();
    return out;
  }

  /** Drops the step in progress (a cancelled step). */
  discard(): void {
    if (this.sum) tf.dispose(this.sum);
    this.reset();
  }

  private reset(): void {
    this.sum = null;
    this.examples = this.lossSum = this.hits = this.micro = 0;
  }
}

function mapValues(o: Record<string, tf.Tensor>, f: (t: tf.Tensor, k: string) => tf.Tensor): Record<string, tf.Tensor> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v, k)]));
}

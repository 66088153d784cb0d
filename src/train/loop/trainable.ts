/**
 * The variables a step differentiates: the loop's `vars`, less those a FreezePolicy holds still at that step
 * (fastai's freeze, then unfreeze: src/train/fine-tune.ts). A held variable is left out of the gradient
 * computation itself, not differentiated and then dropped: its weight-gradient kernels never run, and the
 * backward pass stops at the earliest variable still trained. The optimizer then sees no gradient for it and leaves
 * its weight and its state alone, as PyTorch does for `grad is None`.
 */
import type * as tf from '@tensorflow/tfjs';

export interface FreezePolicy {
  /**
   * Names (keys of the loop's `vars`) that stand still at `step`. A pure function of the step, so a resumed run
   * differentiates what the uninterrupted one did; it returns the same set object for as long as the answer holds,
   * which is how the loop sees that nothing changed.
   */
  frozenAt(step: number): ReadonlySet<string>;
}

export class TrainableVariables {
  private frozen: ReadonlySet<string> | null = null;
  private current: Record<string, tf.Variable>;

  constructor(
    private readonly all: Record<string, tf.Variable>,
    private readonly policy: FreezePolicy | null,
  ) {
    this.current = all;
  }

  /** The variables step `step` differentiates (the same object while the policy's answer stays the same). */
  at(step: number): Record<string, tf.Variable> {
    if (!this.policy) return this.all;
    const frozen = this.policy.frozenAt(step);
    if (frozen === this.frozen) return this.current;
    // a name the loop does not train would freeze nothing: the policy and the loop disagree about the network
    for (const name of frozen) if (!(name in this.all)) throw new Error(`freeze policy: "${name}" is not one of the loop's trainable variables`);
    this.current = frozen.size === 0 ? this.all : Object.fromEntries(Object.entries(this.all).filter(([name]) => !frozen.has(name)));
    this.frozen = frozen;
    return this.current;
  }
}

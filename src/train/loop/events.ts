/**
 * Raises one event on every callback, by `order`. A Cancel thrown by a callback is held until the event has run
 * on all of them (so every callback sees every event it was promised), then the widest one is thrown; a Cancel an
 * event does not allow is a bug in that callback and fails the run with its name. Any other error propagates at once.
 */
import { Cancel, CancelBatch, CancelEpoch, CancelFit, CancelStep, inCallbackOrder, type Callback, type EventName } from '../callbacks';

type CancelKind = typeof CancelBatch | typeof CancelStep | typeof CancelEpoch | typeof CancelFit;

/** Which cancellations each event may raise (Callback's documentation says why). */
const ALLOWED: Record<EventName, readonly CancelKind[]> = {
  beforeFit: [CancelFit],
  beforeEpoch: [CancelEpoch, CancelFit],
  beforeBatch: [CancelBatch, CancelStep, CancelEpoch, CancelFit],
  afterBackward: [CancelBatch, CancelStep, CancelEpoch, CancelFit],
  afterBatch: [CancelEpoch, CancelFit],
  beforeStep: [CancelStep, CancelEpoch, CancelFit],
  afterStep: [CancelEpoch, CancelFit],
  afterEpoch: [CancelFit],
  afterFit: [],
  afterCancelBatch: [CancelEpoch, CancelFit],
  afterCancelStep: [CancelEpoch, CancelFit],
  afterCancelEpoch: [CancelFit],
  afterCancelFit: [],
};

/** The events before fastai's names; a callback that still uses one is refused. */
const RENAMED: Record<string, string> = {
  onTrainBegin: 'beforeFit',
  onEpochBegin: 'beforeEpoch',
  onBatchEnd: 'afterStep (throw CancelFit to stop)',
  onEpochEnd: 'afterEpoch (throw CancelFit to stop)',
  onTrainEnd: 'afterFit',
};

export class Events {
  readonly callbacks: readonly Callback[];
  /** Who threw each held Cancel, for the afterCancel* event. */
  private readonly thrower = new WeakMap<Cancel, string>();

  constructor(callbacks: readonly Callback[]) {
    this.callbacks = inCallbackOrder(callbacks);
    // a callback written for the old names would otherwise be skipped without a word
    this.callbacks.forEach((cb, i) => {
      for (const [old, now] of Object.entries(RENAMED)) {
        if (typeof (cb as unknown as Record<string, unknown>)[old] === 'function') {
          throw new Error(`callback "${cb.name ?? `#${i}`}" has ${old}: the events were renamed, use ${now}`);
        }
      }
    });
  }

  async emit<E extends EventName>(event: E, info: Parameters<NonNullable<Callback[E]>>[0]): Promise<void> {
    let held: Cancel | null = null;
    for (let i = 0; i < this.callbacks.length; i++) {
      const cb = this.callbacks[i];
      const hook = cb[event] as ((x: typeof info) => void | Promise<void>) | undefined;
      if (!hook) continue;
      try {
        await hook.call(cb, info);
      } catch (e) {
        if (!(e instanceof Cancel)) throw e;
        const by = cb.name ?? `callback #${i}`;
        if (!ALLOWED[event].some((k) => e instanceof k)) {
          throw new Error(`callback "${by}" threw ${e.constructor.name} from ${event}, where it cannot take effect (${e.reason})`);
        }
        this.thrower.set(e, by);
        if (!held || e.rank > held.rank) held = e;
      }
    }
    if (held) throw held;
  }

  /** The afterCancel* event for a caught Cancel. */
  async cancelled(c: Cancel): Promise<void> {
    const info = { reason: c.reason, by: this.thrower.get(c) ?? 'the loop' };
    if (c instanceof CancelBatch) await this.emit('afterCancelBatch', info);
    else if (c instanceof CancelStep) await this.emit('afterCancelStep', info);
    else if (c instanceof CancelEpoch) await this.emit('afterCancelEpoch', info);
    else await this.emit('afterCancelFit', info);
  }
}

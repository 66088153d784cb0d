/**
 * One state protocol for everything a checkpoint holds, as PyTorch's `state_dict`/`load_state_dict`: model
 * weights, the optimizer, the trainer (with its data-order RNG), the learning-rate schedule, early stopping, the
 * best-checkpoint tracker, and any part a user registers. The checkpointer iterates over a StateRegistry instead
 * of naming the parts, so a new stateful part is checkpointed by registering it, in one place.
 */
import { ConfigError } from './errors';

export interface Stateful<S> {
  /** The part's name in a checkpoint (a top-level key of state.json); unique within one registry. */
  readonly stateKey: string;
  /** A copy of the state: later training must not change what was returned. */
  getState(): S;
  /** Puts back a state `getState` returned, possibly in another process. */
  setState(state: S): void;
}

/** Keys of state.json that describe the checkpoint itself, so no part may take them. */
export const RESERVED_STATE_KEYS: readonly string[] = ['format', 'version', 'createdAt', 'job', 'input', 'provenance'];

/** The stateful parts of one run, in registration order (the order they are captured and restored in). */
export class StateRegistry {
  private readonly parts = new Map<string, Stateful<unknown>>();

  /** Registers parts; a taken or reserved key is a programming error and throws. */
  add(...parts: Array<Stateful<any>>): this {
    for (const p of parts) {
      if (RESERVED_STATE_KEYS.includes(p.stateKey)) throw new Error(`state key "${p.stateKey}" is reserved for the checkpoint itself`);
      if (this.parts.has(p.stateKey)) throw new Error(`two stateful parts share the state key "${p.stateKey}"`);
      this.parts.set(p.stateKey, p);
    }
    return this;
  }

  get keys(): string[] {
    return [...this.parts.keys()];
  }

  /** Every part's state by its key. */
  capture(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, p] of this.parts) out[k] = p.getState();
    return out;
  }

  /**
   * Gives each registered part its saved state. A part the checkpoint has no state for (null or absent: early
   * stopping switched on by a forced resume, a part registered after the checkpoint was written) keeps its fresh
   * state; `required` parts must be there. States of parts not registered now are left alone.
   */
  restore(states: Readonly<Record<string, unknown>>, required: readonly string[] = []): void {
    for (const k of required) {
      if (this.parts.has(k) && (states[k] === undefined || states[k] === null)) throw new ConfigError('resume', `the checkpoint has no "${k}" state`);
    }
    for (const [k, p] of this.parts) {
      const s = states[k];
      if (s !== undefined && s !== null) p.setState(s);
    }
  }
}

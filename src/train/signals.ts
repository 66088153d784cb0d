/**
 * SIGINT/SIGTERM during training: stop at a point a checkpoint describes exactly, instead of dying mid-write.
 *
 * Checkpoints are written when an epoch is committed (the Trainer's `onEpochCommitted`), so the first signal lets
 * the current epoch finish — its checkpoint is written atomically by the Checkpointer as usual — and stops the
 * loop at the first step after that commit; nothing after the commit is kept. A second signal stops at the next
 * step and keeps the previous checkpoint. A third exits at once (writes are atomic: the previous checkpoint and
 * export stay readable). Training then ends with an InterruptedError (one line, the resume command in it), so
 * nothing is evaluated or exported from the interrupted state.
 *
 * Stopping with CancelFit from `afterEpoch` would be simpler but marks the checkpoint as "stopped early", which a resume
 * treats as finished; stopping one step into the next epoch leaves the committed checkpoint resumable.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../errors';
import { CALLBACK_ORDER, CancelFit, type BatchInfo, type Callback } from './callbacks';
import { checkpointsDir, peekCheckpoint } from './checkpoint/store';

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** The process-wide pieces this module touches, replaceable in tests. */
export interface SignalHost {
  on(signal: StopSignal, listener: () => void): unknown;
  off(signal: StopSignal, listener: () => void): unknown;
  exit(code: number): never | void;
}

export interface InterruptOptions {
  /** The run folder: where the resume hint points and where the checkpoint is looked up. */
  runDir: string;
  signals?: StopSignal[];
  /** Where the one-line notices go (default: stderr). */
  notify?: (line: string) => void;
  host?: SignalHost;
}

/** Conventional shell exit status of a process ended by `signal` (130 for SIGINT, 143 for SIGTERM). */
export function signalExitCode(signal: StopSignal): number {
  return 128 + os.constants.signals[signal];
}

/** Training stopped on a signal; `exitCode` is the conventional status for it, the message says how to resume. */
export class InterruptedError extends UserError {
  readonly exitCode: number;
  constructor(
    readonly signal: StopSignal,
    readonly checkpoint: { dir: string; epochs: number } | null,
    readonly runDir: string,
  ) {
    super(
      checkpoint
        ? `interrupted by ${signal}; checkpoint ${checkpoint.dir} holds ${checkpoint.epochs} finished epoch(s); continue with: layertune train --resume ${quote(runDir)}`
        : `interrupted by ${signal} before the first epoch finished; no checkpoint was written, start again with the same command`,
    );
    this.exitCode = signalExitCode(signal);
  }
}

function quote(p: string): string {
  return /^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`;
}

/** The resumable checkpoint of a run folder (`checkpoints/last`), or null when there is none yet. */
export function lastCheckpoint(runDir: string): { dir: string; epochs: number } | null {
  const dir = path.join(checkpointsDir(runDir), 'last');
  if (!fs.existsSync(path.join(dir, 'state.json'))) return null;
  try {
    return { dir, epochs: peekCheckpoint(dir).trainer.epoch };
  } catch {
    return null;
  }
}

/**
 * A Callback that turns SIGINT/SIGTERM into a stop at a checkpointed state. Listens only between
 * beforeFit and afterFit (or `dispose()`), so outside training the signals keep their default effect.
 */
export class InterruptOnSignal implements Callback {
  readonly name = 'signals';
  readonly order = CALLBACK_ORDER.signals;
  private readonly signals: StopSignal[];
  private readonly host: SignalHost;
  private readonly notify: (line: string) => void;
  private readonly listeners = new Map<StopSignal, () => void>();
  /** The first signal received, or null. */
  received: StopSignal | null = null;
  private count = 0;
  private epoch = 0;
  /** An epoch was committed since the first signal: its checkpoint is the resume point. */
  private committedSince = false;
  private stopped = false;

  constructor(private readonly opts: InterruptOptions) {
    this.signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
    this.host = opts.host ?? (process as unknown as SignalHost);
    this.notify = opts.notify ?? ((l) => process.stderr.write(`${l}\n`));
  }

  beforeFit(info: { startEpoch: number }): void {
    this.epoch = info.startEpoch;
    for (const s of this.signals) {
      const l = () => this.onSignal(s);
      this.listeners.set(s, l);
      this.host.on(s, l);
    }
  }

  private onSignal(signal: StopSignal): void {
    this.count++;
    if (this.count === 1) {
      this.received = signal;
      const last = lastCheckpoint(this.opts.runDir);
      this.notify(
        `${signal}: finishing epoch ${this.epoch + 1} to checkpoint it, then stopping` +
          ` (again: stop at the next step and keep ${last ? `the checkpoint of epoch ${last.epochs}` : 'no checkpoint'})`,
      );
    } else if (this.count === 2) {
      this.notify(`${signal}: stopping at the next step (again: exit at once)`);
    } else {
      this.notify(`${signal}: exiting now; the last checkpoint and export were written atomically and stay readable`);
      this.host.exit(signalExitCode(this.received ?? signal));
    }
  }

  beforeEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  afterEpoch(): void {
    // the Checkpointer commits this epoch right after the callbacks: it becomes the resume point
    if (this.received) this.committedSince = true;
  }

  async afterStep(_b: BatchInfo): Promise<void> {
    // The loop awaits only promises that settle as microtasks (decoded images are cached, wasm reads are
    // synchronous), so without a macrotask turn per step libuv never runs the signal listeners until training
    // ends. One setImmediate per step costs microseconds.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.received && (this.committedSince || this.count >= 2)) {
      this.stopped = true;
      throw new CancelFit(`interrupted by ${this.received}`);
    }
  }

  /** Throws the InterruptedError when training ended because of a signal; always stops listening. */
  afterFit(): void {
    this.dispose();
    if (this.stopped && this.received) throw new InterruptedError(this.received, lastCheckpoint(this.opts.runDir), this.opts.runDir);
  }

  /** Stops listening (idempotent): for callers whose training ended by an error before afterFit. */
  dispose(): void {
    for (const [s, l] of this.listeners) this.host.off(s, l);
    this.listeners.clear();
  }
}

/**
 * Checkpoints: everything a run needs to continue bit for bit, in one folder written atomically.
 *
 *   <run>/checkpoints/last/        after every epoch (what `train --resume` reads)
 *   <run>/checkpoints/best/        when the monitored metric improves
 *   <run>/checkpoints/epoch-0004/  every N epochs (1-based epoch number)
 *
 * Each holds `state.json` (epoch, step, data-order RNG, schedule/plateau, early-stopping and guard state, history,
 * the job it came from, and a manifest of the binary files), `weights.bin` (EVERY model weight, BatchNorm moving
 * statistics included, by stable name) and `optimizer.bin` (the GroupedOptimizer slots, by variable name).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import { replaceFolderAtomic, recoverFolder } from '../export/atomic';
import type { OptimizerState } from '../optim/types';
import type { LrScheduleState } from '../schedules/controller';
import type { EarlyStoppingState } from '../schedules/early-stopping';
import { layerWeightStore, type WeightCopy, type WeightSnapshot, type WeightStore } from '../schedules/weights';
import type { TrainerState } from './trainer-state';
import type { EmaState } from './ema';
import { writeFileDurable } from '../io/write';
import { CorruptCheckpointError, verifyCheckpoint } from './checkpoint-verify';
import { checkStateShape } from './checkpoint-schema';
import { readProvenance, type RunProvenance } from './checkpoint-provenance';

import { CheckpointSchema, type CheckpointConfig } from './schema';

export { CheckpointSchema, type CheckpointConfig };
export type { TrainerState };

export const CHECKPOINT_FORMAT = 'layertune-checkpoint';
export const CHECKPOINT_VERSION = 1;

export interface BestState {
  monitor: string;
  mode: 'min' | 'max';
  value: number | null;
  epoch: number;
}

/** Everything in a checkpoint, in memory. */
export interface Checkpoint {
  /** The resolved job (every default filled in). */
  job: Record<string, unknown>;
  /** The job as given (file merged with flags/options), what a resume starts from. */
  input: Record<string, unknown>;
  trainer: TrainerState;
  schedule: LrScheduleState;
  earlyStopping: EarlyStoppingState | null;
  best: BestState | null;
  weights: WeightSnapshot;
  optimizer: OptimizerState;
  /** restoreBestWeights's copy, kept so a resumed run can still put the best epoch back at the end. */
  earlyStoppingBest?: WeightSnapshot | null;
  /** What the run was trained on (classes, data manifest, model); null in checkpoints older than the record. */
  provenance?: RunProvenance | null;
  /** The weight EMA (config `ema`), its averages in weights.bin under `ema:`; absent or null when the run keeps none. */
  ema?: EmaState | null;
}

interface BlobEntry {
  name: string;
  shape: number[];
  dtype: WeightCopy['dtype'];
  offset: number;
  bytes: number;
}

interface StateFile {
  format: string;
  version: number;
  createdAt: string;
  job: Record<string, unknown>;
  input: Record<string, unknown>;
  trainer: TrainerState;
  schedule: LrScheduleState;
  earlyStopping: EarlyStoppingState | null;
  best: BestState | null;
  weights: BlobEntry[];
  earlyStoppingBest: BlobEntry[] | null;
  optimizer: {
    algorithm: OptimizerState['algorithm'];
    step: number;
    vars: Record<string, { step: number; slots: Record<string, BlobEntry> }>;
  };
  provenance?: RunProvenance;
  ema?: { updates: number; weights: BlobEntry[] } | null;
}

/** The model's weights keyed by original name (src/schedules/weights.ts), with a mismatch reported as a resume error. */
export function modelWeightStore(model: tf.LayersModel): WeightStore {
  return layerWeightStore(model, {
    missing: (keys) =>
      new ConfigError(
        'resume',
        `the checkpoint has no weights for ${keys.slice(0, 3).join(', ')}${keys.length > 3 ? ` and ${keys.length - 3} more` : ''} (another model?)`,
      ),
    shape: (key, snap, v) => new ConfigError('resume', `weight ${key} has shape [${snap}] in the checkpoint, [${v}] in the model`),
  });
}

function bytesOf(values: WeightCopy['values'] | Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Lays typed arrays end to end in one buffer, recording where each went. */
class BlobWriter {
  private parts: Uint8Array[] = [];
  private size = 0;
  add(name: string, shape: number[], dtype: WeightCopy['dtype'], values: WeightCopy['values'] | Float32Array): BlobEntry {
    const b = bytesOf(values);
    const e = { name, shape, dtype, offset: this.size, bytes: b.byteLength };
    this.parts.push(b);
    this.size += b.byteLength;
    return e;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts, this.size);
  }
}

function readBlob(buf: Buffer, e: BlobEntry, file: string): WeightCopy['values'] {
  if (e.offset + e.bytes > buf.byteLength) throw new ConfigError('resume', `${file} is truncated (entry ${e.name})`);
  // copy into a fresh, aligned buffer
  const raw = new Uint8Array(e.bytes);
  raw.set(buf.subarray(e.offset, e.offset + e.bytes));
  const values = e.dtype === 'int32' ? new Int32Array(raw.buffer) : e.dtype === 'bool' ? raw : new Float32Array(raw.buffer);
  const n = e.shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new ConfigError('resume', `${file}: ${e.name} has ${values.length} values for shape [${e.shape}]`);
  return values;
}

/** Writes a checkpoint folder atomically: a crash leaves the previous checkpoint or the new one, never a mixture. */
export async function saveCheckpoint(dir: string, ck: Checkpoint): Promise<void> {
  const w = new BlobWriter();
  const weights = ck.weights.map((x) => w.add(x.name, x.shape, x.dtype, x.values));
  const esBest = ck.earlyStoppingBest ? ck.earlyStoppingBest.map((x) => w.add(`es:${x.name}`, x.shape, x.dtype, x.values)) : null;
  const ema = ck.ema ? { updates: ck.ema.updates, weights: ck.ema.weights.map((x) => w.add(`ema:${x.name}`, x.shape, x.dtype, x.values)) } : null;
  const o = new BlobWriter();
  const vars: StateFile['optimizer']['vars'] = {};
  for (const [name, st] of Object.entries(ck.optimizer.vars)) {
    const slots: Record<string, BlobEntry> = {};
    for (const [slot, s] of Object.entries(st.slots)) slots[slot] = o.add(`${name}/${slot}`, s.shape, 'float32', s.values);
    vars[name] = { step: st.step, slots };
  }
  const state: StateFile = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    createdAt: new Date().toISOString(),
    job: ck.job,
    input: ck.input,
    trainer: ck.trainer,
    schedule: ck.schedule,
    earlyStopping: ck.earlyStopping,
    best: ck.best,
    weights,
    earlyStoppingBest: esBest,
    optimizer: { algorithm: ck.optimizer.algorithm, step: ck.optimizer.step, vars },
    ...(ck.provenance ? { provenance: ck.provenance } : {}),
    ...(ema ? { ema } : {}),
  };
  await replaceFolderAtomic(dir, (tmp) => {
    writeFileDurable(path.join(tmp, 'weights.bin'), w.bytes());
    writeFileDurable(path.join(tmp, 'optimizer.bin'), o.bytes());
    // state.json last: its presence in a finished folder is what marks the folder complete
    writeFileDurable(path.join(tmp, 'state.json'), JSON.stringify(state));
  });
}

function readState(dir: string): StateFile {
  const file = path.join(dir, 'state.json');
  verifyCheckpoint(dir, ['state.json']);
  let s: StateFile;
  try {
    s = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError('resume', `${file}: cannot read checkpoint state (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!s || typeof s !== 'object' || s.format !== CHECKPOINT_FORMAT) throw new ConfigError('resume', `${file}: not a layertune checkpoint`);
  if (s.version !== CHECKPOINT_VERSION) throw new ConfigError('resume', `${file}: checkpoint version ${s.version}, this layertune reads ${CHECKPOINT_VERSION}`);
  checkStateShape(s, file);
  return s;
}

/** Just the job and the position of a checkpoint, without reading the binaries. */
export function peekCheckpoint(dir: string): {
  job: Record<string, unknown>;
  input: Record<string, unknown>;
  trainer: TrainerState;
  provenance: RunProvenance | null;
} {
  const s = readState(dir);
  return { job: s.job, input: s.input, trainer: s.trainer, provenance: readProvenance(s, path.join(dir, 'state.json')) };
}

export function loadCheckpoint(dir: string): Checkpoint {
  verifyCheckpoint(dir);
  const s = readState(dir);
  const wFile = path.join(dir, 'weights.bin');
  const oFile = path.join(dir, 'optimizer.bin');
  const wBuf = fs.readFileSync(wFile);
  const oBuf = fs.readFileSync(oFile);
  const weights = s.weights.map((e) => ({ name: e.name, shape: e.shape, dtype: e.dtype, values: readBlob(wBuf, e, wFile) }));
  const earlyStoppingBest = s.earlyStoppingBest
    ? s.earlyStoppingBest.map((e) => ({ name: e.name.slice(3), shape: e.shape, dtype: e.dtype, values: readBlob(wBuf, e, wFile) }))
    : null;
  const ema = s.ema
    ? {
        updates: s.ema.updates,
        weights: s.ema.weights.map((e) => ({ name: e.name.slice(4), shape: e.shape, dtype: e.dtype, values: readBlob(wBuf, e, wFile) })),
      }
    : null;
  const vars: OptimizerState['vars'] = {};
  for (const [name, st] of Object.entries(s.optimizer.vars)) {
    const slots: Record<string, { shape: number[]; values: Float32Array }> = {};
    for (const [slot, e] of Object.entries(st.slots)) slots[slot] = { shape: e.shape, values: readBlob(oBuf, e, oFile) as Float32Array };
    vars[name] = { step: st.step, slots };
  }
  return {
    job: s.job,
    input: s.input,
    trainer: s.trainer,
    schedule: s.schedule,
    earlyStopping: s.earlyStopping,
    best: s.best,
    weights,
    earlyStoppingBest,
    optimizer: { algorithm: s.optimizer.algorithm, step: s.optimizer.step, vars },
    provenance: readProvenance(s, path.join(dir, 'state.json')),
    ema,
  };
}

export function checkpointsDir(runDir: string): string {
  return path.join(runDir, 'checkpoints');
}

export function epochCheckpointName(epochsDone: number): string {
  return `epoch-${String(epochsDone).padStart(4, '0')}`;
}

/**
 * The checkpoint to resume from: the complete one (state.json present) furthest into the run; `last` wins ties.
 * Throws a ConfigError naming the folder when there is none.
 */
export function latestCheckpoint(runDir: string): string {
  checkRunFolderKind(runDir);
  const root = checkpointsDir(runDir);
  let names: string[] = [];
  try {
    // a kill between replaceFolderAtomic's two renames leaves `.NAME.old`: put it back first
    for (const n of fs.readdirSync(root)) {
      const m = /^\.(.+)\.old$/.exec(n);
      if (m) recoverFolder(path.join(root, m[1]));
    }
    names = fs.readdirSync(root).filter((n) => !n.startsWith('.'));
  } catch {
    // handled below
  }
  let best: { dir: string; step: number } | null = null;
  for (const n of ['last', ...names.filter((x) => x !== 'last')]) {
    const dir = path.join(root, n);
    if (!fs.existsSync(path.join(dir, 'state.json'))) continue;
    let step: number;
    try {
      step = peekCheckpoint(dir).trainer.step;
    } catch (e) {
      // a damaged checkpoint is said out loud, with the intact ones named, never skipped for an older one
      if (e instanceof CorruptCheckpointError) throw e;
      continue;
    }
    if (!best || step > best.step) best = { dir, step };
  }
  if (!best) throw new ConfigError('resume', `${runDir}: no checkpoint to resume from (expected ${path.join(root, 'last', 'state.json')})`);
  return best.dir;
}

/** `--resume` names a run folder: a file, or one checkpoint folder inside a run, gets one line saying which to pass. */
function checkRunFolderKind(runDir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(runDir);
  } catch {
    throw new ConfigError('resume', `${runDir}: no such run folder`);
  }
  if (!st.isDirectory()) throw new ConfigError('resume', `${runDir} is a file, not a run folder (pass the --out folder of the run)`);
  const parent = path.dirname(path.resolve(runDir));
  if (fs.existsSync(path.join(runDir, 'state.json')) && path.basename(parent) === 'checkpoints') {
    throw new ConfigError(
      'resume',
      `${runDir} is one checkpoint of a run; pass the run folder ${path.dirname(parent)} (it resumes from its latest checkpoint)`,
    );
  }
}

/** Tracks the best value of one metric (strict improvement), for `checkpoints/best` without early stopping. */
export class BestTracker {
  constructor(private state: BestState) {}
  static initial(monitor: string, mode: 'min' | 'max'): BestState {
    return { monitor, mode, value: null, epoch: -1 };
  }
  /** True when `metrics[monitor]` beats the best so far (then it becomes the best). */
  update(epoch: number, metrics: Readonly<Record<string, number>>): boolean {
    const v = metrics[this.state.monitor];
    if (typeof v !== 'number') {
      throw new ConfigError(
        'checkpoint.monitor',
        `no metric "${this.state.monitor}" at the end of epoch ${epoch} (have: ${Object.keys(metrics).join(', ') || 'none'})`,
      );
    }
    if (!Number.isFinite(v)) return false;
    const b = this.state.value;
    const better = b === null || (this.state.mode === 'min' ? v < b : v > b);
    if (better) this.state = { ...this.state, value: v, epoch };
    return better;
  }
  getState(): BestState {
    return { ...this.state };
  }
}

/**
 * The checkpoint file layout (CHECKPOINT_VERSION 1): how the states of a run's parts become three files and back.
 *
 *   state.json     {format, version, createdAt, job, input, provenance} and one top-level key per stateful part
 *                  (its `stateKey`): trainer, schedule, earlyStopping, best, weights, earlyStoppingBest, optimizer,
 *                  and any part a user registers (plain JSON)
 *   weights.bin    the arrays of the `weights` part (every model weight, BatchNorm statistics included, by stable
 *                  name), then those of `earlyStoppingBest` (restoreBestWeights's copy, names prefixed `es:`)
 *                  and those of the weight EMA's `ema` part (its averages, names prefixed `ema:`)
 *   optimizer.bin  the slot arrays of the `optimizer` part, by variable name
 *
 * In state.json a binary part keeps its structure with each array replaced by {name, shape, dtype, offset, bytes}.
 * This is the layout the checkpoint code wrote before parts were registered, so older checkpoints read unchanged
 * (test/fixtures/checkpoint-v1).
 */
import * as path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../errors';
import { firstIssue } from '../../export/metadata-schema';
import type { OptimizerState } from '../../optim/types';
import type { LrScheduleState } from '../../schedules/controller';
import type { EarlyStoppingState } from '../../schedules/early-stopping';
import type { WeightCopy, WeightSnapshot } from '../../schedules/weights';
import { RESERVED_STATE_KEYS } from '../../stateful';
import type { TrainerState } from '../trainer-state';
import type { EmaState } from '../ema';
import type { BestState } from './best';
import { readProvenance, type RunProvenance } from './provenance';

export const CHECKPOINT_FORMAT = 'layertune-checkpoint';
export const CHECKPOINT_VERSION = 1;

export const WEIGHTS_FILE = 'weights.bin';
export const OPTIMIZER_FILE = 'optimizer.bin';
export const STATE_FILE = 'state.json';

/** The states of the parts every training run registers, by state key. */
export interface CoreStates {
  trainer: TrainerState;
  schedule: LrScheduleState;
  earlyStopping: EarlyStoppingState | null;
  best: BestState | null;
  weights: WeightSnapshot;
  optimizer: OptimizerState;
  /** restoreBestWeights's copy, kept so a resumed run can still put the best epoch back at the end. */
  earlyStoppingBest?: WeightSnapshot | null;
}

/** Everything in a checkpoint, in memory: what the run was, and every registered part's state by its key. */
export type Checkpoint = CoreStates & {
  /** The resolved job (every default filled in). */
  job: Record<string, unknown>;
  /** The job as given (file merged with flags/options), what a resume starts from. */
  input: Record<string, unknown>;
  /** What the run was trained on (classes, data manifest, model); null in checkpoints older than the record. */
  provenance?: RunProvenance | null;
  /** States of parts beyond the core ones (plain JSON), by state key. */
  [part: string]: unknown;
};

/** The core parts in the order state.json has always listed them; the ones that may be null are written as null. */
const CORE_ORDER = ['trainer', 'schedule', 'earlyStopping', 'best', 'weights', 'earlyStoppingBest', 'optimizer'] as const;
const NULLABLE = new Set<string>(['earlyStopping', 'best', 'earlyStoppingBest']);

const count = z.number().int().nonnegative();
const BlobEntrySchema = z.object({
  name: z.string(),
  shape: z.array(count),
  dtype: z.enum(['float32', 'int32', 'bool']),
  offset: count,
  bytes: count,
});
type BlobEntry = z.infer<typeof BlobEntrySchema>;

/**
 * The shape of state.json, checked when it is read back, so a hand-edited or damaged file is refused with one line
 * naming the field instead of failing later as `Cannot read properties of undefined`. Objects pass unknown fields
 * through: newer fields (and the sections other modules own) are checked where they are used.
 */
export const StateFileSchema = z
  .object({
    format: z.string(),
    version: z.number(),
    job: z.record(z.string(), z.unknown()),
    input: z.record(z.string(), z.unknown()),
    trainer: z
      .object({
        epoch: count,
        step: count,
        rng: z.number().int(),
        guard: z.object({}).passthrough().nullable(),
        history: z.array(z.object({}).passthrough()),
        stoppedEarly: z.string().nullable(),
      })
      .passthrough(),
    schedule: z.object({}).passthrough(),
    earlyStopping: z.object({}).passthrough().nullable(),
    best: z.object({}).passthrough().nullable(),
    weights: z.array(BlobEntrySchema),
    earlyStoppingBest: z.array(BlobEntrySchema).nullable(),
    optimizer: z
      .object({
        algorithm: z.string(),
        step: count,
        vars: z.record(z.string(), z.object({ step: count, slots: z.record(z.string(), BlobEntrySchema) })),
      })
      .passthrough(),
    ema: z
      .object({ updates: count, weights: z.array(BlobEntrySchema) })
      .nullable()
      .optional(),
  })
  .passthrough();

export type StateFile = z.infer<typeof StateFileSchema>;

/** Lays typed arrays end to end in one buffer, recording where each went. */
class BlobWriter {
  private parts: Uint8Array[] = [];
  private size = 0;
  add(name: string, shape: number[], dtype: WeightCopy['dtype'], values: WeightCopy['values']): BlobEntry {
    const b = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const e = { name, shape, dtype, offset: this.size, bytes: b.byteLength };
    this.parts.push(b);
    this.size += b.byteLength;
    return e;
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts, this.size);
  }
}

function readBlob(buf: Uint8Array, e: BlobEntry, file: string): WeightCopy['values'] {
  if (e.offset + e.bytes > buf.byteLength) throw new ConfigError('resume', `${file} is truncated (entry ${e.name})`);
  // copy into a fresh, aligned buffer
  const raw = new Uint8Array(e.bytes);
  raw.set(buf.subarray(e.offset, e.offset + e.bytes));
  const values = e.dtype === 'int32' ? new Int32Array(raw.buffer) : e.dtype === 'bool' ? raw : new Float32Array(raw.buffer);
  const n = e.shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) throw new ConfigError('resume', `${file}: ${e.name} has ${values.length} values for shape [${e.shape}]`);
  return values;
}

type Blobs = Record<typeof WEIGHTS_FILE | typeof OPTIMIZER_FILE, BlobWriter>;
type BlobBytes = Record<typeof WEIGHTS_FILE | typeof OPTIMIZER_FILE, Uint8Array>;

/** How one part's state is laid out: into state.json (and a binary file), and back. */
interface PartCodec {
  encode(state: unknown, blobs: Blobs): unknown;
  decode(json: unknown, bytes: BlobBytes, dir: string): unknown;
}

/** A weight snapshot: entries in `weights.bin`, names prefixed so that two snapshots can share the file. */
const weightsCodec = (prefix: string): PartCodec => ({
  encode: (s, blobs) => (s as WeightSnapshot).map((x) => blobs[WEIGHTS_FILE].add(`${prefix}${x.name}`, x.shape, x.dtype, x.values)),
  decode: (json, bytes, dir) =>
    (json as BlobEntry[]).map((e) => ({
      name: e.name.slice(prefix.length),
      shape: e.shape,
      dtype: e.dtype,
      values: readBlob(bytes[WEIGHTS_FILE], e, path.join(dir, WEIGHTS_FILE)),
    })),
});

const optimizerCodec: PartCodec = {
  encode(s, blobs) {
    const st = s as OptimizerState;
    const vars: Record<string, { step: number; slots: Record<string, BlobEntry> }> = {};
    for (const [name, v] of Object.entries(st.vars)) {
      const slots: Record<string, BlobEntry> = {};
      for (const [slot, x] of Object.entries(v.slots)) slots[slot] = blobs[OPTIMIZER_FILE].add(`${name}/${slot}`, x.shape, 'float32', x.values);
      vars[name] = { step: v.step, slots };
    }
    return { algorithm: st.algorithm, step: st.step, vars };
  },
  decode(json, bytes, dir) {
    const o = json as StateFile['optimizer'];
    const vars: OptimizerState['vars'] = {};
    for (const [name, v] of Object.entries(o.vars)) {
      const slots: Record<string, { shape: number[]; values: Float32Array }> = {};
      for (const [slot, e] of Object.entries(v.slots))
        slots[slot] = { shape: e.shape, values: readBlob(bytes[OPTIMIZER_FILE], e, path.join(dir, OPTIMIZER_FILE)) as Float32Array };
      vars[name] = { step: v.step, slots };
    }
    return { algorithm: o.algorithm as OptimizerState['algorithm'], step: o.step, vars };
  },
};

/** The weight EMA (src/train/ema.ts): its update count in state.json, its averages in weights.bin. */
const emaCodec: PartCodec = {
  encode(s, blobs) {
    const e = s as EmaState;
    return { updates: e.updates, weights: weightsCodec('ema:').encode(e.weights, blobs) };
  },
  decode(json, bytes, dir) {
    const j = json as { updates: number; weights: BlobEntry[] };
    return { updates: j.updates, weights: weightsCodec('ema:').decode(j.weights, bytes, dir) as WeightSnapshot };
  },
};

/** Every other part: its state as it is, which must be plain JSON (a typed array would come back as an object). */
const jsonCodec: PartCodec = {
  encode: (s) => s,
  decode: (json) => json,
};

function checkPlain(v: unknown, at: string): void {
  if (ArrayBuffer.isView(v)) throw new Error(`checkpoint part ${at} is a typed array: only the weights and optimizer parts hold arrays`);
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) checkPlain(x, `${at}.${k}`);
}

const CODECS: Record<string, PartCodec> = {
  weights: weightsCodec(''),
  earlyStoppingBest: weightsCodec('es:'),
  optimizer: optimizerCodec,
  ema: emaCodec,
};
function codecOf(key: string): PartCodec {
  return CODECS[key] ?? jsonCodec;
}

/** The parts' keys in file order: the core ones as they have always been listed, then the others as given. */
function partKeys(ck: Record<string, unknown>): string[] {
  const rest = Object.keys(ck).filter((k) => !RESERVED_STATE_KEYS.includes(k) && !(CORE_ORDER as readonly string[]).includes(k));
  return [...CORE_ORDER, ...rest];
}

/** The three files of a checkpoint, in the order they are written (state.json last: it marks the folder complete). */
export function encodeCheckpoint(ck: Checkpoint, createdAt: Date = new Date()): Array<[string, Uint8Array | string]> {
  const blobs: Blobs = { [WEIGHTS_FILE]: new BlobWriter(), [OPTIMIZER_FILE]: new BlobWriter() };
  const state: Record<string, unknown> = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    createdAt: createdAt.toISOString(),
    job: ck.job,
    input: ck.input,
  };
  for (const k of partKeys(ck)) {
    const s = ck[k];
    if (s === undefined || s === null) {
      if (NULLABLE.has(k)) state[k] = null;
      else if ((CORE_ORDER as readonly string[]).includes(k)) throw new Error(`checkpoint without the "${k}" part`);
      continue;
    }
    if (!(k in CODECS)) checkPlain(s, k);
    state[k] = codecOf(k).encode(s, blobs);
  }
  if (ck.provenance) state.provenance = ck.provenance;
  return [
    [WEIGHTS_FILE, blobs[WEIGHTS_FILE].bytes()],
    [OPTIMIZER_FILE, blobs[OPTIMIZER_FILE].bytes()],
    [STATE_FILE, JSON.stringify(state)],
  ];
}

/** Parses and checks state.json's text; `file` names it in every refusal. */
export function parseState(text: string, file: string): StateFile {
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('resume', `${file}: cannot read checkpoint state (${(e as Error).message})`);
  }
  const o = s as { format?: unknown; version?: unknown } | null;
  if (!o || typeof o !== 'object' || o.format !== CHECKPOINT_FORMAT) throw new ConfigError('resume', `${file}: not a layertune checkpoint`);
  if (o.version !== CHECKPOINT_VERSION) throw new ConfigError('resume', `${file}: checkpoint version ${o.version}, this layertune reads ${CHECKPOINT_VERSION}`);
  const r = StateFileSchema.safeParse(s);
  if (!r.success) throw new ConfigError('resume', `${file}: bad checkpoint state: ${firstIssue(r.error)}`);
  return r.data;
}

/** What a checkpoint is of and how far it got, read without its binaries. */
export interface CheckpointSummary {
  job: Record<string, unknown>;
  input: Record<string, unknown>;
  trainer: TrainerState;
  provenance: RunProvenance | null;
}

export function describeState(s: StateFile, file: string): CheckpointSummary {
  return { job: s.job, input: s.input, trainer: s.trainer as unknown as TrainerState, provenance: readProvenance(s as { provenance?: unknown }, file) };
}

/** A parsed state.json and the bytes of its binaries as the Checkpoint they encode. */
export function decodeCheckpoint(s: StateFile, bytes: BlobBytes, dir: string): Checkpoint {
  const raw = s as Record<string, unknown>;
  const parts: Record<string, unknown> = {};
  for (const k of Object.keys(raw)) {
    if (RESERVED_STATE_KEYS.includes(k)) continue;
    parts[k] = raw[k] === null ? null : codecOf(k).decode(raw[k], bytes, dir);
  }
  return { ...(parts as unknown as CoreStates), job: s.job, input: s.input, provenance: readProvenance(raw, path.join(dir, STATE_FILE)) };
}

/**
 * Where an e2e bench epoch goes (issue 16): the job `npm run bench -- --e2e` runs (flowers5 split 80/20, MobileNet v1
 * 0.25 at 224, batch 16, layer-wise rates, BatchNorm frozen, one epoch), timed by stage. Two callbacks, one first and
 * one last in the order, stamp every event, and a few methods are wrapped to time themselves; nothing of the run's
 * arithmetic changes.
 *
 * Per epoch it reports: batch assembly (the wait between a step's end and the next batch's start: decode, flips,
 * copying into the batch), the forward/backward part split into the input tensor (preprocess) and the gradient
 * computation, the optimizer step, the callbacks' own time, validation (with the validation pool's start), and the
 * main thread's event-loop utilisation and the process's CPU per wall second (2.0 = both cores busy). Outside the
 * epoch: preparation, the class probe, the gradient workers' start, the checkpoint, and what follows the fit.
 *
 * usage: npx tsx scripts/measure-e2e-stages.ts [--runs 3] [--data DIR] [--threads auto|N] [--epochs 1] [--decode-ahead 0|both]
 * --decode-ahead 0: no decoding ahead (src/data/decode-ahead.ts); `both` interleaves 0 and the default run by run, an
 * A/B in the same minutes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DecodeAhead } from '../src/data/decode-ahead';
import { ImageFolderSource } from '../src/data/image-folder';
import { InferencePool } from '../src/engine/inference-pool';
import { runJob } from '../src/job';
import type { Callback } from '../src/train/callbacks';
import { FeatureInputs } from '../src/train/loop/feature-inputs';
import { GradientThreads } from '../src/train/loop/parallel-step';
import { disposeNetwork } from '../src/tune/parts';
import { materialiseSplit, PEER_GROUP_RULES } from './bench/peer-split';
import { arg, median } from './bench/stats';

const ROOT = path.join(__dirname, '..');
const now = () => performance.now();
const loadNow = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

/** Time spent inside wrapped calls: the sum of their durations and the wall time at least one was running. */
class Intervals {
  private spans: Array<[number, number]> = [];
  add(a: number, b: number): void {
    this.spans.push([a, b]);
  }
  reset(): void {
    this.spans = [];
  }
  /** [sum of durations, union of the spans] within [from, to], in ms. */
  within(from: number, to: number): [number, number] {
    const s = this.spans.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as [number, number]).filter(([a, b]) => b > a);
    const sum = s.reduce((t, [a, b]) => t + b - a, 0);
    s.sort((x, y) => x[0] - y[0]);
    let union = 0;
    let end = -Infinity;
    for (const [a, b] of s) {
      if (b <= end) continue;
      union += b - Math.max(a, end);
      end = b;
    }
    return [sum, union];
  }
}

const decodes = new Intervals();
const preprocess = new Intervals();
const gradients = new Intervals();
const valPoolStart = new Intervals();
const gradPoolStart = new Intervals();

function wrapAsync<T extends object>(target: T, name: keyof T, into: Intervals): void {
  const orig = target[name] as unknown as (...a: unknown[]) => unknown;
  (target as Record<string, unknown>)[name as string] = function (this: unknown, ...a: unknown[]) {
    const t = now();
    const r = orig.apply(this, a);
    if (r && typeof (r as Promise<unknown>).then === 'function') return (r as Promise<unknown>).finally(() => into.add(t, now()));
    into.add(t, now());
    return r;
  };
}

// only cache misses decode: the cached() lookup is inside these, so a hit adds a span of microseconds
wrapAsync(ImageFolderSource.prototype, 'pixels', decodes);
wrapAsync(FeatureInputs.prototype, 'of', preprocess);
wrapAsync(GradientThreads.prototype, 'compute', gradients);
wrapAsync(GradientThreads.prototype, 'start', gradPoolStart);
wrapAsync(InferencePool as unknown as Record<string, unknown>, 'create', valPoolStart);

/** The A/B knob: 0 turns decoding ahead off in every batch stream of the run (each batch then decodes when asked for). */
let decodeAhead: number | undefined;
const startAhead = DecodeAhead.prototype.start;
DecodeAhead.prototype.start = function (this: DecodeAhead<unknown>, from: number, to: number) {
  if (decodeAhead !== 0) startAhead.call(this, from, to);
};

type Stamp = { event: string; at: number; late: boolean; elu: ReturnType<typeof performance.eventLoopUtilization>; cpu: NodeJS.CpuUsage };

function stampers(stamps: Stamp[]): Callback[] {
  const events = ['beforeFit', 'beforeEpoch', 'beforeBatch', 'afterBackward', 'afterBatch', 'beforeStep', 'afterStep', 'afterEpoch', 'afterFit'];
  const make = (late: boolean): Callback => {
    const cb: Record<string, unknown> = { name: late ? 'stamp-late' : 'stamp-early', order: late ? 1e9 : -1e9 };
    for (const e of events) cb[e] = () => void stamps.push({ event: e, at: now(), late, elu: performance.eventLoopUtilization(), cpu: process.cpuUsage() });
    return cb as Callback;
  };
  return [make(false), make(true)];
}

interface Breakdown {
  [stage: string]: number;
}

async function oneRun(split: string, threads: 'auto' | number, epochs: number): Promise<Breakdown[]> {
  for (const i of [decodes, preprocess, gradients, valPoolStart, gradPoolStart]) i.reset();
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-e2e-stages-'));
  const stamps: Stamp[] = [];
  const t0 = now();
  const res = await runJob(
    {
      data: { dir: split },
      model: { size: 224, batchNorm: 'frozen' },
      train: { epochs, batch: 16, monitorRatios: false, threads },
      groups: { rules: PEER_GROUP_RULES },
      lr: { scaling: 'linear' },
      backend: 'auto',
      out,
    },
    { log: () => {}, callbacks: stampers(stamps), report: false },
  );
  const tEnd = now();
  disposeNetwork(res.network);
  fs.rmSync(out, { recursive: true, force: true });
  const at = (event: string, late: boolean, from = 0) => {
    const s = stamps.findIndex((x, i) => i >= from && x.event === event && x.late === late);
    if (s < 0) throw new Error(`no ${event} stamp`);
    return s;
  };
  const rows: Breakdown[] = [];
  const fitStart = stamps[at('beforeFit', false)].at;
  let cursor = 0;
  for (let e = 0; e < res.fit.history.length; e++) {
    const eStart = stamps[at('beforeEpoch', false, cursor)].at;
    const eEndIdx = at('afterEpoch', false, cursor);
    const eEnd = stamps[eEndIdx].at;
    const epochStamps = stamps.slice(cursor, eEndIdx);
    // the wait for each batch: from the end of what came before it (the previous step or the epoch's start)
    let assembly = 0;
    let forwardBackward = 0;
    const perBatch: number[] = [];
    const waits: number[] = [];
    let optimizer = 0;
    let callbacks = 0;
    let lastEnd = stamps[at('beforeEpoch', true, cursor)].at;
    let lastStepEnd = lastEnd;
    let lastStepStamp = stamps[at('beforeEpoch', true, cursor)];
    for (let i = 0; i < epochStamps.length; i++) {
      const s = epochStamps[i];
      if (s.late) continue;
      const late = epochStamps.slice(i + 1).find((x) => x.late && x.event === s.event) as Stamp;
      callbacks += late.at - s.at;
      if (s.event === 'beforeBatch') assembly += s.at - lastEnd;
      if (s.event === 'beforeBatch') waits.push(s.at - lastEnd);
      if (s.event === 'afterBackward') {
        forwardBackward += s.at - lastEnd;
        perBatch.push(s.at - lastEnd);
      }
      if (s.event === 'afterStep') {
        optimizer += s.at - lastEnd;
        lastStepEnd = late.at;
        lastStepStamp = late;
      }
      lastEnd = late.at;
    }
    const validation = eEnd - lastStepEnd;
    const first = stamps[at('beforeEpoch', false, cursor)];
    const last = stamps[eEndIdx];
    /** Main-thread busy share, and CPU seconds of the whole process (workers, libvips) per wall second. */
    const use = (a: Stamp, b: Stamp) => ({
      elu: performance.eventLoopUtilization(b.elu, a.elu).utilization,
      cores: (b.cpu.user + b.cpu.system - a.cpu.user - a.cpu.system) / 1000 / (b.at - a.at),
    });
    const trainUse = use(first, lastStepStamp);
    const valUse = use(lastStepStamp, last);
    const [decodeSumTrain, decodeWallTrain] = decodes.within(eStart, lastStepEnd);
    const [decodeSumVal, decodeWallVal] = decodes.within(lastStepEnd, eEnd);
    rows.push({
      epoch_s: res.fit.history[e].seconds,
      stamped_epoch_ms: eEnd - eStart,
      batch_assembly_ms: assembly,
      decode_train_wall_ms: decodeWallTrain,
      decode_train_sum_ms: decodeSumTrain,
      first_batch_wait_ms: waits[0] ?? 0,
      later_batch_wait_median_ms: waits.length > 1 ? median(waits.slice(1)) : 0,
      forward_backward_ms: forwardBackward,
      first_forward_backward_ms: perBatch[0] ?? 0,
      later_forward_backward_median_ms: perBatch.length > 1 ? median(perBatch.slice(1)) : 0,
      preprocess_ms: preprocess.within(eStart, lastStepEnd)[1],
      gradients_ms: gradients.within(eStart, lastStepEnd)[1],
      optimizer_ms: optimizer,
      callbacks_ms: callbacks,
      validation_ms: validation,
      val_pool_start_ms: valPoolStart.within(lastStepEnd, eEnd)[1],
      decode_val_wall_ms: decodeWallVal,
      decode_val_sum_ms: decodeSumVal,
      train_main_thread_busy: trainUse.elu,
      train_cores_busy: trainUse.cores,
      val_main_thread_busy: valUse.elu,
      val_cores_busy: valUse.cores,
      ...(e === 0
        ? {
            before_fit_ms: fitStart - t0,
            grad_pool_start_ms: gradPoolStart.within(t0, fitStart)[1],
            // the checkpoint is written between the epoch's afterEpoch and the next event (afterFit on the last)
            after_epoch_to_fit_end_ms: stamps[at('afterFit', false)].at - stamps[at('afterEpoch', true)].at,
            after_fit_ms: tEnd - stamps[at('afterFit', true)].at,
            job_ms: tEnd - t0,
          }
        : {}),
    });
    cursor = eEndIdx + 1;
  }
  return rows;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '3'));
  const threadsArg = arg('threads', 'auto');
  const threads = threadsArg === 'auto' ? 'auto' : Number(threadsArg);
  const epochs = Number(arg('epochs', '1'));
  const data = arg('data', path.join(ROOT, '..', 'shared', 'data', 'flowers5'));
  const split = materialiseSplit(data);
  console.log(`# ${split.nTrain} train / ${split.nVal} val from ${data}, ${epochs} epoch(s), threads ${threadsArg}, load at start ${loadNow()}`);
  const aheadArg = arg('decode-ahead', '');
  const variants: Array<number | undefined> = aheadArg === 'both' ? [0, undefined] : [aheadArg === '' ? undefined : Number(aheadArg)];
  const all = new Map<string, Breakdown[][]>(variants.map((v) => [String(v ?? 'default'), []]));
  const fmt = (k: string, v: number) => v.toFixed(k.endsWith('busy') ? 2 : 1);
  try {
    for (let r = 0; r < runs; r++) {
      for (const v of variants) {
        decodeAhead = v;
        const rows = await oneRun(split.dir, threads, epochs);
        all.get(String(v ?? 'default'))!.push(rows);
        const shown = rows.map((x) => Object.fromEntries(Object.entries(x).map(([k, n]) => [k, +fmt(k, n)])));
        console.log(JSON.stringify({ run: r + 1, decodeAhead: v ?? 'default', load: os.loadavg()[0], epochs: shown }));
      }
    }
  } finally {
    fs.rmSync(split.dir, { recursive: true, force: true });
  }
  const names = [...all.keys()];
  console.log(`# medians of ${runs}, epoch 1 (ms unless _s or busy), decode ahead: ${names.join(' | ')}`);
  for (const k of Object.keys(all.get(names[0])![0][0])) {
    console.log(`${k.padEnd(28)} ${names.map((n) => fmt(k, median(all.get(n)!.map((rows) => rows[0][k]))).padStart(9)).join(' ')}`);
  }
  console.log(`# load at end ${loadNow()}`);
}

void main();

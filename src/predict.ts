import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Crop } from './data/decode';
import { meanOverViews, type Tta, ttaViews, viewCount } from './data/tta';
import { preprocessBatch } from './data/preprocess';
import { IMAGE_EXTENSIONS, scanFolder } from './data/scan';
import { DataError } from './errors';
import { kindName, refuseInvalidUtf8Names } from './io/path-kind';
import { loadExport, type ExportMetadata } from './export/exporter';
import type { Preprocess } from './models/types';
import { inputPreprocess } from './export/input-affine';
import { chainGraphHead, isGraphHeadExport } from './models/graph-source';
import { FoldedModel } from './models/fold-batchnorm';
import { InferencePool } from './engine/inference-pool';
import { resolveInferenceThreads } from './engine/inference-threads';
import { runInOrder } from './infer/pipeline';

export interface Classifier {
  model: tf.LayersModel;
  /**
   * What predictions run on: `model` with its BatchNorms folded into the convolutions (same logits
   * within float rounding, fewer ops), or `model` itself when nothing folds. Dispose it with `model`.
   */
  inference?: tf.LayersModel;
  /** How photos are fitted to the input: an export applies what its metadata.json records; a plain ImageNet model crops the centre. */
  crop: Crop;
  /** `center` only: timm's crop_pct (the short side is resized to ⌊size / cropPct⌋ before the centre crop); absent: 1. */
  cropPct?: number;
  /** Test-time augmentation: softmax averaged over the image's views (src/data/tta.ts); absent: none. */
  tta?: Tta;
  labels: string[];
  size: number;
  preprocess: Preprocess;
}

/**
 * Opens an export (labels and preprocessing from its metadata.json) or any tfjs LayersModel
 * classifier, e.g. the shipped ImageNet MobileNet with a labels file beside it.
 */
export async function loadClassifier(dir: string, labelsFile?: string, crop?: Crop, view: { cropPct?: number; tta?: Tta } = {}): Promise<Classifier> {
  const loaded = await loadExport(dir);
  const metadata = loaded.metadata;
  // a head trained on a GraphModel is exported alone, over embeddings: run the graph before it
  const model = metadata && isGraphHeadExport(loaded.model, metadata) ? await chainGraphHead(loaded.model, metadata) : loaded.model;
  const size = metadata?.inputSize ?? (model.inputs[0].shape[1] as number);
  // a graph with its normalisation baked in takes pixels (or TM's x/127 − 1) instead of metadata.preprocessing's range
  const preprocess: Preprocess = metadata ? inputPreprocess(metadata.inputConvention, metadata.preprocessing) : { kind: 'scale', low: -1, high: 1 };
  let labels: string[] | undefined = metadata?.labels;
  const candidates = [labelsFile, path.join(dir, 'labels.txt'), path.join(path.dirname(path.resolve(dir)), 'imagenet_labels_1000.txt')];
  for (const f of candidates) {
    if (labels || !f || !fs.existsSync(f)) continue;
    labels = fs
      .readFileSync(f, 'utf8')
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  const outputs = (model.outputs[0].shape as number[]).slice(-1)[0];
  if (!labels || labels.length !== outputs) labels = Array.from({ length: outputs }, (_, i) => `class_${i}`);
  // an export says how it was validated; one written before eval.crop was stretched; a bare pretrained classifier
  // expects ImageNet's centre crop at the short side (what `center` always meant here before cropPct)
  const inference = FoldedModel.create(model)?.model ?? model;
  const recorded = metadata?.evalCrop;
  return {
    model,
    inference,
    labels,
    size,
    preprocess,
    crop: crop ?? recorded?.mode ?? (metadata ? 'fill' : 'center'),
    cropPct: view.cropPct ?? recorded?.cropPct ?? 1,
    tta: view.tta ?? 'none',
  };
}

export interface Prediction {
  file: string;
  top: Array<{ label: string; index: number; probability: number }>;
}

/**
 * The image files named by `inputs`: a file as given, a folder walked recursively for image extensions
 * (sorted, so output order is stable between runs and machines). A path the user named must be a folder or a
 * regular file (a missing one, a FIFO or a device is refused: it was asked for by name and cannot be classified);
 * an image-named FIFO or device found inside a folder is skipped through `warn`, as the data scan skips it, and is
 * never opened. A name that is not valid UTF-8 is refused: Node could not open it by the name it reads back.
 */
export function collectImages(inputs: string[], warn: (line: string) => void = () => {}): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    refuseInvalidUtf8Names(
      dir,
      entries.map((e) => e.name),
    );
    for (const e of entries) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (!IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) continue;
      else if (e.isFile()) out.push(f);
      else if (!e.isSymbolicLink()) warn(`${f}: is ${kindName(fs.statSync(f))}, not an image file, skipped`);
    }
  };
  for (const p of inputs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      throw new DataError(p, 'no such file or folder');
    }
    if (st.isDirectory()) walk(p);
    else if (st.isFile()) out.push(p);
    else throw new DataError(p, `is ${kindName(st)}, not an image file or folder`);
  }
  return out;
}

/** RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled. */
function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row per image: `file,label_1,probability_1,...,label_k,probability_k`, with a header. */
export function predictionsCsv(preds: Prediction[]): string {
  const k = Math.max(0, ...preds.map((p) => p.top.length));
  const header = ['file', ...Array.from({ length: k }, (_, i) => [`label_${i + 1}`, `probability_${i + 1}`]).flat()];
  const rows = preds.map((p) => [p.file, ...p.top.flatMap((t) => [t.label, t.probability])]);
  return `${[header, ...rows].map((r) => r.map(csvField).join(',')).join('\n')}\n`;
}

/** How predict/evaluate run their forward passes. */
export interface InferenceOptions {
  /** Images per forward pass (default 16). */
  batch?: number;
  /** Worker threads (default 1: the calling thread computes); `auto` follows resolveInferenceThreads. */
  threads?: 'auto' | number;
}

/** What a whole inference run took, decode and any worker start-up included. */
export interface InferenceSummary {
  images: number;
  batch: number;
  threads: number;
  /** Why that many threads (the resolved `auto`, or a request capped by the batch count). */
  threadsReason: string;
  seconds: number;
  imagesPerSecond: number;
}

/** Batches decoded ahead of the one being computed: enough to keep every lane fed while sharp works. */
const PREFETCH_PER_LANE = 2;

type PixelBatch = { pixels: Uint8Array; n: number };

/**
 * Decodes files [start, start + count) into one stack of 8-bit HWC images: each file's test-time views in a row
 * (one view without TTA), cut by the classifier's evaluation crop.
 */
async function decodeBatch(c: Classifier, files: string[], start: number, count: number): Promise<PixelBatch> {
  const chunk = files.slice(start, start + count);
  const crop = { mode: c.crop, cropPct: c.cropPct ?? 1 };
  const px = (await Promise.all(chunk.map((f) => ttaViews(f, c.size, crop, c.tta ?? 'none')))).flat();
  const pixels = new Uint8Array(px.length * c.size * c.size * 3);
  px.forEach((p, k) => pixels.set(p, k * p.length));
  return { pixels, n: px.length };
}

/** One batch on the calling thread: the model's output, flattened [n, k]. */
async function runLocal(c: Classifier, b: PixelBatch): Promise<Float32Array> {
  const probs = tf.tidy(() => {
    const y = (c.inference ?? c.model).predict(preprocessBatch(b.pixels, b.n, c.size, c.preprocess)) as tf.Tensor;
    return y.reshape([b.n, -1]);
  });
  const data = (await probs.data()) as Float32Array;
  probs.dispose();
  return data;
}

/** Worker threads for this run, or null (with the reason) when the model cannot be handed to them. */
async function startPool(c: Classifier, threads: number): Promise<{ pool: InferencePool | null; note?: string }> {
  try {
    return { pool: await InferencePool.create(c.inference ?? c.model, { threads, size: c.size, preprocess: c.preprocess }) };
  } catch (e) {
    // e.g. a head chained onto a GraphModel, which does not save as a LayersModel: the calling thread runs it
    return { pool: null, note: `1 (worker threads unavailable: ${String((e as Error)?.message ?? e).split('\n')[0]})` };
  }
}

/**
 * Every file's output row (class probabilities for a classifier), in input order, and how long the whole run took.
 * With N threads, this thread and N-1 workers each compute whole batches (same batches, same kernels: the same
 * numbers as one thread), while the next batches decode ahead on sharp's own threads.
 */
export async function inferFiles(c: Classifier, files: string[], opts: InferenceOptions = {}): Promise<{ rows: Float32Array[]; summary: InferenceSummary }> {
  const t0 = performance.now();
  const batch = opts.batch ?? 16;
  const views = viewCount(c.tta ?? 'none');
  // `batch` counts forward-pass images, so test-time views share it
  const perBatch = Math.max(1, Math.floor(batch / views));
  const count = Math.ceil(files.length / perBatch);
  let choice = resolveInferenceThreads(opts.threads ?? 1, tf.getBackend(), count);
  // this thread is one lane, each worker another: on two cores one worker start-up and one model copy, not two
  const { pool, note } = choice.threads > 1 ? await startPool(c, choice.threads - 1) : { pool: null };
  if (note) choice = { threads: 1, reason: note };
  const lanes = 1 + (pool?.threads ?? 0);
  let outs: Float32Array[];
  try {
    outs = await runInOrder(
      count,
      (i) => decodeBatch(c, files, i * perBatch, perBatch),
      (b, _, lane) => (lane === 0 || !pool ? runLocal(c, b) : pool.run(b)),
      { lanes, depth: PREFETCH_PER_LANE * lanes },
    );
  } finally {
    await pool?.dispose();
  }
  const rows: Float32Array[] = [];
  outs.forEach((data, i) => {
    const n = Math.min(perBatch, files.length - i * perBatch);
    const k = data.length / (n * views);
    for (let j = 0; j < n; j++) rows.push(views === 1 ? data.slice(j * k, (j + 1) * k) : meanOverViews(data, j, views, k));
  });
  const seconds = (performance.now() - t0) / 1000;
  return {
    rows,
    summary: { images: files.length, batch, threads: choice.threads, threadsReason: choice.reason, seconds, imagesPerSecond: files.length / seconds },
  };
}

/** The top `topK` classes of one output row, most probable first. */
function topOf(c: Classifier, p: Float32Array, topK: number): Prediction['top'] {
  return [...p]
    .map((probability, index) => ({ label: c.labels[index], index, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, topK);
}

/** Predictions for every file, in input order, and the run's summary (images/s over the whole run, decode included). */
export async function classifyFiles(
  c: Classifier,
  files: string[],
  opts: InferenceOptions & { topK?: number } = {},
): Promise<{ predictions: Prediction[]; summary: InferenceSummary }> {
  const { rows, summary } = await inferFiles(c, files, opts);
  return { predictions: rows.map((p, i) => ({ file: files[i], top: topOf(c, p, opts.topK ?? 3) })), summary };
}

export async function predictFiles(c: Classifier, files: string[], topK = 3, batch = 16, threads: 'auto' | number = 1): Promise<Prediction[]> {
  return (await classifyFiles(c, files, { topK, batch, threads })).predictions;
}

export interface Evaluation {
  accuracy: number;
  n: number;
  perClass: Array<{ label: string; precision: number; recall: number; support: number }>;
  /** rows: true class, columns: predicted class, in `labels` order */
  confusion: number[][];
  labels: string[];
  /** What the scan skipped or noticed (FIFOs and devices named like images, ...), for the caller to print. */
  warnings: string[];
  /** How the forward passes ran and how long they took. */
  summary: InferenceSummary;
}

/** Accuracy, per-class precision/recall and the confusion matrix on a folder of class sub-folders. */
export async function evaluateFolder(c: Classifier, dir: string, opts: InferenceOptions = {}): Promise<Evaluation> {
  const layout = scanFolder(dir);
  const files = layout.all ?? [...(layout.presplit!.test ?? layout.presplit!.val)];
  const index = layout.classes.map((name) => {
    const i = c.labels.indexOf(name);
    if (i < 0)
      throw new DataError(
        path.join(dir, name),
        `class "${name}" is not one of the model's labels (${c.labels.slice(0, 10).join(', ')}${c.labels.length > 10 ? ', ...' : ''})`,
      );
    return i;
  });
  const k = c.labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const { rows: probs, summary } = await inferFiles(
    c,
    files.map((f) => f.file),
    opts,
  );
  probs.forEach((p, i) => {
    let best = 0;
    for (let j = 1; j < p.length; j++) if (p[j] > p[best]) best = j;
    confusion[index[files[i].label]][best]++;
  });
  const correct = confusion.reduce((s, row, i) => s + row[i], 0);
  const perClass = c.labels.map((label, i) => {
    const tp = confusion[i][i];
    const support = confusion[i].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((s, row) => s + row[i], 0);
    return { label, precision: predicted ? tp / predicted : 0, recall: support ? tp / support : 0, support };
  });
  return {
    accuracy: files.length ? correct / files.length : NaN,
    n: files.length,
    perClass,
    confusion,
    labels: c.labels,
    warnings: layout.warnings,
    summary,
  };
}

export type { ExportMetadata };

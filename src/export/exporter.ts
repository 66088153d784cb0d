import { packageVersion } from '../package-root';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { captureHandler, fileHandler, writeModelArtifacts } from '../models/io';
import { resolveModelJson } from '../models/tfjs-layers';
import type { Network } from '../models/network';
import { replaceFolderAtomic } from './atomic';
import { writeFileDurable } from '../io/write';
import { verifyChecksums } from '../io/checksum';
import { readExportMetadata } from './metadata-schema';
import type { ExportSettings } from '../config/schema';
import { ExportCheckError, ModelFormatError } from '../errors';
import { notRegularFile } from '../io/path-kind';
import { planQuantization, quantizeWeights } from './quantize';
import { affineFor, bakeInputAffine, inputPreprocess, type InputConvention } from './input-affine';
import type { Preprocess } from '../models/types';
import { FoldedModel } from '../models/fold-batchnorm';
import type { EmaRecord } from '../train/ema';
import { EvalSchema } from '../data/augment-schema';
import type { EvalCrop } from '../data/eval-crop';

function defaultEvalCrop(): EvalCrop {
  const d = EvalSchema.parse({});
  return { mode: d.crop, cropPct: d.cropPct };
}

/** The Teachable Machine release whose metadata.json and model layout an export follows (`@teachablemachine/image` load()). */
export const TM_VERSION = '2.4.7';
const AFFINE_LAYER = 'lt_input_affine';

/** Teachable Machine's metadata fields, written beside ours so a TM app reads an export as its own. */
export interface TeachableMachineFields {
  tfjsVersion: string;
  tmVersion: string;
  packageName: string;
  packageVersion: string;
  modelName: string;
  timeStamp: string;
  userMetadata: Record<string, unknown>;
  imageSize: number;
  grayscale: boolean;
}

/** What metadata.json records about quantization, so a consumer sees what it costs without re-running the check. */
export interface QuantizationRecord {
  mode: ExportSettings['quantize'];
  layers: ExportSettings['quantizeLayers'];
  /** weight entries stored quantized, of all weight entries */
  quantizedWeights: number;
  totalWeights: number;
  weightsBytes: { float32: number; quantized: number };
  /** validation top-1 of the float32 model and of the export as plain tfjs reloads it; null without validation images */
  top1: { float32: number | null; quantized: number | null; change: number | null; images: number };
  /** milliseconds plain `tf.loadLayersModel` took to read the written export back */
  loadMs: number;
}

export interface ExportOptions {
  settings?: Partial<ExportSettings>;
  /** validation top-1 of a whole-image model; the quantized export is reloaded and judged with it */
  evaluate?: { images: number; run: (model: tf.LayersModel, preprocess: Preprocess) => Promise<number> };
  log?: (line: string) => void;
}

export interface ExportMetadata extends TeachableMachineFields {
  layertuneVersion: string;
  /**
   * What the graph's input is: `preprocessed` (apply `preprocessing` to 0–255 RGB first), `rgb255` (0–255 RGB,
   * normalisation inside the graph) or `tm` (Teachable Machine's x/127 − 1). Absent in older exports: `preprocessed`.
   */
  inputConvention: InputConvention;
  labels: string[];
  inputSize: number;
  preprocessing: Network['backbone']['preprocess'];
  backbone: { arch: string; source: string };
  /** How validation cut the input square from a photo; `predict` and `evaluate` apply the same (README: plain tfjs recipe). */
  evalCrop: EvalCrop;
  trainingConfig: unknown;
  metrics: unknown;
  createdAt: string;
  /**
   * Whether BatchNorm was folded into the convolutions (export.foldBatchNorm and at least one conv + BN pair).
   * Absent in exports written before the option existed: not folded.
   */
  foldedBatchNorm?: boolean;
  quantization?: QuantizationRecord;
  /** A run with a weight EMA (config `ema`): which weights this export holds, `ema` or `raw`, and the decay. */
  ema?: EmaRecord;
}

/** What the caller knows about the run; `evalCrop` absent: the eval section's defaults. */
export type RunMetadata = Pick<ExportMetadata, 'trainingConfig' | 'metrics' | 'ema'> & { evalCrop?: EvalCrop };

export interface Exporter {
  export(net: Network, dir: string, meta: RunMetadata, options?: ExportOptions): Promise<string>;
}

export function layertuneVersion(): string {
  return packageVersion();
}

/**
 * Writes `<dir>/model.json`, `weights.bin` and `metadata.json`: a plain tfjs LayersModel (softmax
 * output) that `tf.loadLayersModel` reads without layertune, replacing any previous export atomically.
 */
export class LayersModelExporter implements Exporter {
  async export(net: Network, dir: string, meta: RunMetadata, options: ExportOptions = {}): Promise<string> {
    const settings: ExportSettings = {
      quantize: 'none',
      quantizeLayers: {},
      maxTop1Drop: 0.01,
      onAccuracyDrop: 'refuse',
      bakePreprocessing: false,
      foldBatchNorm: false,
      format: 'tfjs',
      ...options.settings,
    };
    const { artifacts: saved, folded } = await capture(net.infer, settings.foldBatchNorm);
    const log = options.log ?? (() => {});
    const convention: InputConvention = settings.format === 'tm' ? 'tm' : settings.bakePreprocessing ? 'rgb255' : 'preprocessed';
    const affine = affineFor(convention, net.backbone.preprocess);
    // folded first: quantization then rounds the folded weights, which are what the graph computes with
    const float = affine ? await bakeInputAffine(saved, affine, AFFINE_LAYER) : saved;
    const specs = float.weightSpecs!;
    const plan = planQuantization(specs, settings.quantize, settings.quantizeLayers);
    // six numbers that set every input's scale: not worth any rounding error
    for (const k of [...plan.keys()]) if (k.startsWith(`${AFFINE_LAYER}/`)) plan.delete(k);
    const floatData = float.weightData as ArrayBuffer;
    const stored = plan.size ? quantizeWeights(specs, floatData, plan) : { specs, data: floatData };
    const artifacts = { ...float, weightSpecs: stored.specs, weightData: stored.data };
    const createdAt = new Date().toISOString();
    const metadata: ExportMetadata = {
      tfjsVersion: tf.version.tfjs,
      tmVersion: TM_VERSION,
      packageName: 'layertune',
      packageVersion: layertuneVersion(),
      modelName: `layertune-${net.backbone.arch}`,
      timeStamp: createdAt,
      userMetadata: {},
      imageSize: net.backbone.inputSize,
      grayscale: false,
      layertuneVersion: layertuneVersion(),
      labels: net.classes,
      inputSize: net.backbone.inputSize,
      inputConvention: convention,
      preprocessing: net.backbone.preprocess,
      backbone: { arch: net.backbone.arch, source: net.backbone.source },
      evalCrop: meta.evalCrop ?? defaultEvalCrop(),
      trainingConfig: meta.trainingConfig,
      metrics: meta.metrics,
      createdAt,
      foldedBatchNorm: folded,
      ...(meta.ema ? { ema: meta.ema } : {}),
    };
    await replaceFolderAtomic(dir, async (tmp) => {
      writeModelArtifacts(tmp, artifacts, { userDefinedMetadata: { labels: net.classes } });
      if (plan.size) {
        metadata.quantization = await checkQuantized(
          net,
          tmp,
          settings,
          convention,
          options,
          plan.size,
          specs.length,
          floatData.byteLength,
          stored.data.byteLength,
        );
        const q = metadata.quantization;
        const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(2)}%`);
        log(
          `export: ${settings.quantize === 'none' ? 'per-layer' : settings.quantize} weights ${(q.weightsBytes.quantized / 1e6).toFixed(2)} MB ` +
            `(float32 ${(q.weightsBytes.float32 / 1e6).toFixed(2)} MB), validation top-1 ${pct(q.top1.quantized)} vs ${pct(q.top1.float32)} float32` +
            (q.top1.change === null ? ' (no validation images: accuracy not checked)' : ` (change ${(100 * q.top1.change).toFixed(2)} points)`),
        );
        const drop = q.top1.change === null ? 0 : -q.top1.change;
        // a hair of float noise must not turn an exact tie at the threshold into a refusal
        if (drop > settings.maxTop1Drop + 1e-12) {
          const msg = `export.quantize: ${settings.quantize} loses ${(100 * drop).toFixed(2)} points of validation top-1 (limit export.maxTop1Drop ${settings.maxTop1Drop})`;
          if (settings.onAccuracyDrop === 'refuse') throw new ExportCheckError(`${msg}; the previous export at ${dir} is unchanged`);
          log(`warning: ${msg}; written anyway (export.onAccuracyDrop: warn)`);
        }
      }
      writeFileDurable(path.join(tmp, 'metadata.json'), JSON.stringify(metadata, null, 2));
    });
    return dir;
  }
}

/**
 * The model's artifacts in memory; with `fold`, those of its BatchNorm-folded copy, which is built, saved and
 * disposed here (the source model is untouched). `folded` is false when asked to fold but nothing folds.
 */
async function capture(model: tf.LayersModel, fold: boolean): Promise<{ artifacts: tf.io.ModelArtifacts; folded: boolean }> {
  // the export keeps its activation layers: a topology with them is what Keras-style tools expect to read
  const copy = fold ? FoldedModel.create(model, { fuseActivations: false }) : null;
  const h = captureHandler();
  try {
    await (copy?.model ?? model).save(h);
  } finally {
    copy?.dispose();
  }
  return { artifacts: h.artifacts!, folded: copy !== null };
}

/** Reloads the written folder with plain tfjs and measures its validation top-1 against the float32 model in memory. */
async function checkQuantized(
  net: Network,
  tmp: string,
  settings: ExportSettings,
  convention: InputConvention,
  options: ExportOptions,
  quantizedWeights: number,
  totalWeights: number,
  float32Bytes: number,
  quantizedBytes: number,
): Promise<QuantizationRecord> {
  const t0 = performance.now();
  const loaded = await tf.loadLayersModel(fileHandler(path.join(tmp, 'model.json')));
  const loadMs = performance.now() - t0;
  try {
    const ev = options.evaluate;
    const usable = ev && ev.images > 0;
    const float32 = usable ? await ev.run(net.infer, net.backbone.preprocess) : null;
    const quantized = usable ? await ev.run(loaded, inputPreprocess(convention, net.backbone.preprocess)) : null;
    return {
      mode: settings.quantize,
      layers: settings.quantizeLayers,
      quantizedWeights,
      totalWeights,
      weightsBytes: { float32: float32Bytes, quantized: quantizedBytes },
      top1: { float32, quantized, change: float32 === null || quantized === null ? null : quantized - float32, images: usable ? ev.images : 0 },
      loadMs: Math.round(loadMs),
    };
  } finally {
    loaded.dispose();
  }
}

/** Reads an export back: model plus metadata (labels, size, preprocessing). */
export async function loadExport(dir: string): Promise<{ model: tf.LayersModel; metadata: ExportMetadata | null }> {
  const json = resolveModelJson(dir);
  const metaPath = path.join(path.dirname(json), 'metadata.json');
  // before the checksum pass, which would open it: a FIFO blocks a read, a device never ends
  const kind = notRegularFile(metaPath, 'metadata.json');
  if (kind) throw new ModelFormatError(metaPath, kind);
  // an export of ours carries checksums.sha256; a plain tfjs folder has none and loads as before
  verifyChecksums(path.dirname(json));
  const model = await tf.loadLayersModel(fileHandler(json));
  const outputs = (model.outputs[0].shape as number[]).slice(-1)[0];
  const metadata = fs.existsSync(metaPath) ? (readExportMetadata(metaPath, outputs) as unknown as ExportMetadata) : null;
  return { model, metadata };
}

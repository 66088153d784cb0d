import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';

/** model.json files are small; anything larger is a hostile or broken file, refused before JSON.parse. */
export const MAX_MODEL_JSON_BYTES = 32 * 1024 * 1024;
/** Refuse manifests declaring more weights than this before reading a byte of them. */
export const MAX_WEIGHT_BYTES = 2 * 1024 * 1024 * 1024;

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, uint16: 2 };

/**
 * Reads and validates a LayersModel `model.json` and its weight shards from a local folder.
 * tfjs without tfjs-node has no file:// handler; this one also refuses weight paths that leave
 * the folder and manifests whose byte counts disagree with the files, before any large allocation.
 */
export function readModelArtifacts(modelJsonPath: string): tf.io.ModelArtifacts {
  const dir = path.dirname(path.resolve(modelJsonPath));
  let stat: fs.Stats;
  try {
    stat = fs.statSync(modelJsonPath);
  } catch {
    throw new ModelFormatError(modelJsonPath, 'no such file (expected a tfjs LayersModel model.json)');
  }
  if (stat.size > MAX_MODEL_JSON_BYTES) {
    throw new ModelFormatError(modelJsonPath, `model.json is ${stat.size} bytes, over the ${MAX_MODEL_JSON_BYTES}-byte limit`);
  }
  let json: any;
  try {
    json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
  } catch (e) {
    throw new ModelFormatError(modelJsonPath, `not valid JSON (${(e as Error).message})`);
  }
  if (json == null || typeof json !== 'object' || json.modelTopology == null) {
    throw new ModelFormatError(modelJsonPath, 'missing modelTopology: not a tfjs LayersModel model.json');
  }
  const manifest: tf.io.WeightsManifestConfig = json.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw new ModelFormatError(modelJsonPath, 'weightsManifest must be an array');

  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  let declaredTotal = 0;
  manifest.forEach((group, gi) => {
    if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ModelFormatError(modelJsonPath, `weightsManifest[${gi}] needs paths[] and weights[]`);
    }
    let groupBytes = 0;
    for (const w of group.weights) {
      const per = DTYPE_BYTES[w.dtype ?? 'float32'];
      if (per === undefined) throw new ModelFormatError(modelJsonPath, `weight ${w.name}: unsupported dtype ${w.dtype}`);
      if (!Array.isArray(w.shape) || w.shape.some((d) => !Number.isInteger(d) || d < 0)) {
        throw new ModelFormatError(modelJsonPath, `weight ${w.name}: invalid shape ${JSON.stringify(w.shape)}`);
      }
      const q = (w as any).quantization;
      const bytes = w.shape.reduce((a, b) => a * b, 1) * (q ? DTYPE_BYTES[q.dtype] ?? 1 : per);
      groupBytes += bytes;
    }
    declaredTotal += groupBytes;
    if (declaredTotal > MAX_WEIGHT_BYTES) {
      throw new ModelFormatError(modelJsonPath, `manifest declares ${declaredTotal} bytes of weights, over the limit`);
    }
    let actual = 0;
    const parts: Buffer[] = [];
    for (const p of group.paths) {
      const full = path.resolve(dir, p);
      if (path.relative(dir, full).startsWith('..') || path.isAbsolute(p)) {
        throw new ModelFormatError(modelJsonPath, `weight path "${p}" leaves the model folder`);
      }
      let buf: Buffer;
      try {
        buf = fs.readFileSync(full);
      } catch {
        throw new ModelFormatError(full, 'weight shard listed in the manifest is missing');
      }
      actual += buf.length;
      parts.push(buf);
    }
    if (actual !== groupBytes) {
      throw new ModelFormatError(
        modelJsonPath,
        `weightsManifest[${gi}] declares ${groupBytes} bytes but its shards hold ${actual}`,
      );
    }
    specs.push(...group.weights);
    buffers.push(...parts);
  });
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: specs,
    weightData,
    userDefinedMetadata: json.userDefinedMetadata,
  };
}

/** An IOHandler over a local folder, for tf.loadLayersModel. */
export function fileHandler(modelJsonPath: string): tf.io.IOHandler {
  return { load: async () => readModelArtifacts(modelJsonPath) };
}

/**
 * Writes artifacts as model.json + one weights.bin into `dir` (which must already exist and be
 * empty, normally a temporary folder that the caller renames into place).
 */
export function writeModelArtifacts(dir: string, artifacts: tf.io.ModelArtifacts, extra: Record<string, unknown> = {}): void {
  const weightData = artifacts.weightData as ArrayBuffer;
  const modelJson = {
    format: 'layers-model',
    generatedBy: artifacts.generatedBy,
    convertedBy: 'layertune',
    modelTopology: artifacts.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    ...extra,
  };
  fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(weightData));
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJson));
}

/** An IOHandler that captures what model.save() produces, so the caller decides where bytes go. */
export function captureHandler(): tf.io.IOHandler & { artifacts?: tf.io.ModelArtifacts } {
  const h: tf.io.IOHandler & { artifacts?: tf.io.ModelArtifacts } = {
    save: async (a: tf.io.ModelArtifacts) => {
      h.artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  };
  return h;
}

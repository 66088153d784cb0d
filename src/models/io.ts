import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';
import { writeFileDurable } from '../io/write';

/** model.json files are small; anything larger is a hostile or broken file, refused before JSON.parse. */
export const MAX_MODEL_JSON_BYTES = 32 * 1024 * 1024;
/** Refuse manifests declaring more weights than this before reading a byte of them. */
export const MAX_WEIGHT_BYTES = 2 * 1024 * 1024 * 1024;

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, uint16: 2 };
/** Storage per value of a quantized weight (tfjs quantizes to uint8, uint16 or float16). */
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

function inside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * Bytes a manifest group's shards must hold (`stored`, after quantization) and the float32 bytes its
 * weights become once loaded; refuses unknown dtypes and invalid shapes. `where` names the file or URL.
 */
export function declaredGroupBytes(weights: tf.io.WeightsManifestEntry[], where: string): { stored: number; float32: number } {
  let stored = 0;
  let float32 = 0;
  for (const w of weights) {
    const per = DTYPE_BYTES[w.dtype ?? 'float32'];
    if (per === undefined) throw new ModelFormatError(where, `weight ${w.name}: unsupported dtype ${w.dtype}`);
    if (!Array.isArray(w.shape) || w.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ModelFormatError(where, `weight ${w.name}: invalid shape ${JSON.stringify(w.shape)}`);
    }
    const q = (w as any).quantization;
    let size = per;
    if (q != null) {
      size = QUANTIZED_BYTES[q.dtype];
      if (size === undefined) throw new ModelFormatError(where, `weight ${w.name}: unsupported quantization dtype ${q.dtype}`);
    }
    const n = w.shape.reduce((a, b) => a * b, 1);
    stored += n * size;
    float32 += n * 4;
  }
  return { stored, float32 };
}

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
  // tfjs walks the topology recursively: refuse what would overflow its stack
  if (jsonDepth(json, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new ModelFormatError(modelJsonPath, `JSON nested deeper than ${MAX_JSON_DEPTH} levels: not a model.json`);
  }
  if (json == null || typeof json !== 'object' || json.modelTopology == null) {
    throw new ModelFormatError(modelJsonPath, 'missing modelTopology: not a tfjs LayersModel model.json');
  }
  const manifest: tf.io.WeightsManifestConfig = json.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw new ModelFormatError(modelJsonPath, 'weightsManifest must be an array');

  // First pass, no weight bytes read: declared sizes, shard paths and the shard files' sizes.
  const realDir = fs.realpathSync(dir);
  let declaredTotal = 0;
  let declaredFloatBytes = 0;
  const plan = manifest.map((group, gi) => {
    if (group == null || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new ModelFormatError(modelJsonPath, `weightsManifest[${gi}] needs paths[] and weights[]`);
    }
    const { stored: groupBytes, float32: groupFloatBytes } = declaredGroupBytes(group.weights, modelJsonPath);
    declaredFloatBytes += groupFloatBytes;
    declaredTotal += groupBytes;
    if (declaredTotal > MAX_WEIGHT_BYTES) {
      throw new ModelFormatError(modelJsonPath, `manifest declares ${declaredTotal} bytes of weights, over the limit`);
    }
    let actual = 0;
    const files = group.paths.map((p) => {
      if (typeof p !== 'string' || path.isAbsolute(p)) throw new ModelFormatError(modelJsonPath, `weight path ${JSON.stringify(p)} leaves the model folder`);
      const full = path.resolve(dir, p);
      if (!inside(dir, full)) throw new ModelFormatError(modelJsonPath, `weight path "${p}" leaves the model folder`);
      let real: string;
      let st: fs.Stats;
      try {
        real = fs.realpathSync(full);
        st = fs.statSync(real);
      } catch {
        throw new ModelFormatError(full, 'weight shard listed in the manifest is missing');
      }
      // a symlink inside the folder may still point anywhere
      if (!inside(realDir, real)) throw new ModelFormatError(modelJsonPath, `weight path "${p}" links outside the model folder (${real})`);
      if (!st.isFile()) throw new ModelFormatError(full, 'weight shard is not a regular file');
      actual += st.size;
      return real;
    });
    // compared before reading: a shard far larger than declared is never loaded into memory
    if (actual !== groupBytes) {
      throw new ModelFormatError(modelJsonPath, `weightsManifest[${gi}] declares ${groupBytes} bytes but its shards hold ${actual}`);
    }
    return { weights: group.weights, files };
  });
  const need = topologyVariableBytes(json.modelTopology);
  if (need > declaredFloatBytes) {
    throw new ModelFormatError(
      modelJsonPath,
      `the topology's layers would build ${need} bytes of variables but the manifest holds ${declaredFloatBytes}: refused before building (a layer config lies about its size)`,
    );
  }

  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const g of plan) {
    specs.push(...g.weights);
    for (const f of g.files) buffers.push(fs.readFileSync(f));
  }
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
  writeFileDurable(path.join(dir, 'weights.bin'), Buffer.from(weightData));
  writeFileDurable(path.join(dir, 'model.json'), JSON.stringify(modelJson));
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

// ---------------------------------------------------------------------------------------------
// Topology budget: tfjs builds every layer variable (zero-filled) BEFORE it compares them with
// the manifest, so a model.json declaring `filters: 20000000` allocates gigabytes although its
// manifest is small. The shapes are inferred here from the layer configs, without tfjs, and the
// model is refused when its variables would not fit the bytes the manifest declares.
// ---------------------------------------------------------------------------------------------

/** Deepest JSON nesting accepted in model.json (Google's MobileNets: 10; nested Teachable Machine models: ~16). */
export const MAX_JSON_DEPTH = 100;

type Shape = Array<number | null> | null;

interface LayerJson {
  class_name?: string;
  name?: string;
  config?: Record<string, any>;
  inbound_nodes?: unknown[];
}

/** Depth of nested arrays/objects, iteratively: a hostile file cannot overflow the stack here. */
export function jsonDepth(root: unknown, limit = Infinity): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const c of Object.values(v as object)) if (c !== null && typeof c === 'object') stack.push([c, d + 1]);
  }
  return max;
}

const prod = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);
const pair = (v: unknown, dflt: number): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : typeof v === 'number' ? [v, v] : [dflt, dflt];
const known = (s: Shape): s is number[] => Array.isArray(s) && s.every((d) => typeof d === 'number');

function convOut(n: number | null, k: number, s: number, d: number, padding: unknown): number | null {
  if (n === null) return null;
  return padding === 'same' ? Math.ceil(n / s) : Math.max(0, Math.ceil((n - (k - 1) * d) / s));
}

/** Elementwise and bookkeeping layers: output shape = input shape, no variables. */
const SHAPE_PRESERVING = new Set([
  'Activation',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'ThresholdedReLU',
  'Dropout',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Masking',
  'Rescaling',
  'Layer',
]);
const MERGE = new Set(['Add', 'Multiply', 'Average', 'Maximum', 'Minimum', 'Subtract']);

/**
 * The variables one layer builds for input shape `inp`, and its output shape (null where this
 * estimate does not know the layer or the input is unknown).
 */
function layerBudget(
  cls: string,
  c: Record<string, any>,
  inp: Shape[],
  nested: (l: LayerJson, inp: Shape) => { bytes: number; out: Shape },
): { params: number; out: Shape; bytes?: number } {
  const x = inp[0] ?? null;
  const ch = x && typeof x[x.length - 1] === 'number' ? (x[x.length - 1] as number) : null;
  const useBias = c.use_bias !== false;
  switch (cls) {
    case 'InputLayer':
      return { params: 0, out: Array.isArray(c.batch_input_shape) ? c.batch_input_shape : null };
    case 'Conv2D':
    case 'Conv2DTranspose':
    case 'DepthwiseConv2D':
    case 'SeparableConv2D': {
      const [k0, k1] = pair(c.kernel_size, 1);
      const [s0, s1] = pair(c.strides, 1);
      const [d0, d1] = pair(c.dilation_rate, 1);
      const dm = Number(c.depth_multiplier ?? 1);
      const outCh = cls === 'DepthwiseConv2D' ? (ch === null ? null : ch * dm) : Number(c.filters);
      let params = 0;
      if (ch !== null) {
        if (cls === 'DepthwiseConv2D') params = k0 * k1 * ch * dm;
        else if (cls === 'SeparableConv2D') params = k0 * k1 * ch * dm + ch * dm * Number(c.filters);
        else params = k0 * k1 * ch * Number(c.filters);
      }
      if (useBias && outCh !== null) params += outCh;
      if (x?.length !== 4) return { params, out: null };
      const out: Shape =
        cls === 'Conv2DTranspose'
          ? [x[0], x[1] === null ? null : x[1] * s0, x[2] === null ? null : x[2] * s1, outCh]
          : [x[0], convOut(x[1], k0, s0, d0, c.padding), convOut(x[2], k1, s1, d1, c.padding), outCh];
      return { params, out };
    }
    case 'Dense': {
      const units = Number(c.units);
      return { params: (ch ?? 0) * units + (useBias ? units : 0), out: x ? [...x.slice(0, -1), units] : null };
    }
    case 'Embedding':
      return { params: Number(c.input_dim) * Number(c.output_dim), out: x ? [...x, Number(c.output_dim)] : null };
    case 'BatchNormalization':
    case 'LayerNormalization':
      return { params: 4 * (ch ?? 0), out: x };
    case 'PReLU':
      return { params: x && known(x.slice(1)) ? prod(x.slice(1) as number[]) : 0, out: x };
    case 'Flatten':
      return { params: 0, out: x ? [x[0], known(x.slice(1)) ? prod(x.slice(1) as number[]) : null] : null };
    case 'Reshape': {
      const t = Array.isArray(c.target_shape) ? (c.target_shape as number[]) : null;
      if (!t) return { params: 0, out: null };
      if (t.includes(-1)) {
        const total = x && known(x.slice(1)) ? prod(x.slice(1) as number[]) : null;
        const rest = prod(t.filter((d) => d !== -1));
        return { params: 0, out: [x ? x[0] : null, ...t.map((d) => (d === -1 ? (total === null || rest === 0 ? null : total / rest) : d))] };
      }
      return { params: 0, out: [x ? x[0] : null, ...t] };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      return { params: 0, out: x ? (c.keepdims ? [x[0], 1, 1, ch] : [x[0], ch]) : null };
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const [p0, p1] = pair(c.pool_size, 2);
      const [s0, s1] = c.strides == null ? [p0, p1] : pair(c.strides, 1);
      return { params: 0, out: x && x.length === 4 ? [x[0], convOut(x[1], p0, s0, 1, c.padding), convOut(x[2], p1, s1, 1, c.padding), ch] : null };
    }
    case 'ZeroPadding2D': {
      const p = c.padding;
      const [t, b] = Array.isArray(p) && Array.isArray(p[0]) ? p[0] : pair(p, 1);
      const [l, r] = Array.isArray(p) && Array.isArray(p[1]) ? p[1] : pair(Array.isArray(p) ? p[1] : p, 1);
      return { params: 0, out: x && x.length === 4 ? [x[0], x[1] === null ? null : x[1] + t + b, x[2] === null ? null : x[2] + l + r, ch] : null };
    }
    case 'Concatenate': {
      const lasts = inp.map((s) => (s ? s[s.length - 1] : null));
      return { params: 0, out: x && lasts.every((d) => typeof d === 'number') ? [...x.slice(0, -1), (lasts as number[]).reduce((a, b) => a + b, 0)] : null };
    }
    case 'Model':
    case 'Functional':
    case 'Sequential': {
      const r = nested({ class_name: cls, config: c }, x);
      return { params: 0, bytes: r.bytes, out: r.out };
    }
    default:
      if (SHAPE_PRESERVING.has(cls) || MERGE.has(cls)) return { params: 0, out: x };
      return { params: 0, out: null };
  }
}

/**
 * Bytes of float32 variables tfjs would create building this Keras topology (a lower bound where
 * shapes cannot be inferred: unknown layer classes or unknown input sizes add nothing).
 */
export function topologyVariableBytes(modelTopology: unknown): number {
  const t = modelTopology as Record<string, any>;
  const root: LayerJson = t?.model_config ?? t;
  const container = (l: LayerJson, input: Shape): { bytes: number; out: Shape } => {
    const cfg = l.config as any;
    const layers: LayerJson[] = Array.isArray(cfg) ? cfg : Array.isArray(cfg?.layers) ? cfg.layers : [];
    let bytes = 0;
    if (l.class_name === 'Sequential' || Array.isArray(cfg)) {
      let shape: Shape = input;
      layers.forEach((layer, i) => {
        const c = layer.config ?? {};
        if (i === 0 && Array.isArray(c.batch_input_shape)) shape = c.batch_input_shape;
        const r = layerBudget(String(layer.class_name), c, [shape], container);
        bytes += r.bytes ?? r.params * 4;
        shape = r.out;
      });
      return { bytes, out: shape };
    }
    const shapes = new Map<string, Shape>();
    for (const layer of layers) {
      const c = layer.config ?? {};
      const nodes = Array.isArray(layer.inbound_nodes) ? layer.inbound_nodes : [];
      const inbound = Array.isArray(nodes[0]) ? (nodes[0] as unknown[][]) : [];
      let inp: Shape[] = inbound.map((n) => shapes.get(String(n?.[0])) ?? null);
      if (layer.class_name === 'InputLayer' || (inp.length === 0 && input)) inp = [input];
      const r = layerBudget(String(layer.class_name), c, inp, container);
      bytes += r.bytes ?? r.params * 4;
      shapes.set(String(layer.name ?? c.name), r.out);
    }
    const outs = Array.isArray(cfg?.output_layers) ? cfg.output_layers : [];
    return { bytes, out: outs.length === 1 ? (shapes.get(String(outs[0]?.[0])) ?? null) : null };
  };
  return container(root, null).bytes;
}

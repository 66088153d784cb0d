/**
 * Weight quantization in the format tfjs already reads: each weight entry of model.json's
 * `weightsManifest` may carry `quantization: {dtype: 'uint8' | 'uint16', min, scale}` or
 * `{dtype: 'float16'}`, and `tf.loadLayersModel` turns it back into float32 on load
 * (tfjs-core io_utils `decodeWeight`: `value = q * scale + min`). The affine maths follows
 * tfjs-converter's quantization.py so an export of ours decodes exactly like a converted one.
 */
import type * as tf from '@tensorflow/tfjs';
import { setFloat16 } from '@petamoriken/float16';

export const QUANTIZE_MODES = ['none', 'float16', 'uint16', 'uint8'] as const;
export type QuantizeMode = (typeof QUANTIZE_MODES)[number];
export type QuantizedDtype = Exclude<QuantizeMode, 'none'>;

const QUANT_MAX = { uint8: 255, uint16: 65535 } as const;

/** numpy's `np.round`: halves go to the even neighbour, which is what the reference converter stores. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Scale and range for affine quantization of values in [min, max]. When the range covers 0 the
 * minimum is nudged so that 0 lands exactly on an integer code: zero padding and ReLU-dead units
 * then stay exactly 0 after decoding instead of becoming a small offset everywhere.
 */
export function affineRange(min: number, max: number, dtype: 'uint8' | 'uint16'): { scale: number; min: number; max: number } {
  const qmax = QUANT_MAX[dtype];
  const scale = (max - min) / qmax;
  if (!(min <= 0 && 0 <= max)) return { scale, min, max };
  const zeroPoint = roundHalfEven((0 - min) / scale);
  const nudgedMin = -zeroPoint * scale;
  return { scale, min: nudgedMin, max: qmax * scale + nudgedMin };
}

export interface AffineQuantized {
  codes: Uint8Array | Uint16Array;
  min: number;
  scale: number;
}

/**
 * Quantizes `data` to integer codes with `value ≈ code * scale + min`. A constant tensor (min = max,
 * e.g. a zero-initialised bias) has no range to divide: every code is 0 and `min` is the constant,
 * so it decodes exactly.
 */
export function quantizeAffine(data: Float32Array, dtype: 'uint8' | 'uint16'): AffineQuantized {
  const codes = dtype === 'uint8' ? new Uint8Array(data.length) : new Uint16Array(data.length);
  if (data.length === 0) return { codes, min: 0, scale: 1 };
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of data) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo === hi) return { codes, min: lo, scale: 1 };
  const r = affineRange(lo, hi, dtype);
  for (let i = 0; i < data.length; i++) {
    const v = Math.min(Math.max(data[i], r.min), r.max);
    codes[i] = roundHalfEven((v - r.min) / r.scale);
  }
  return { codes, min: r.min, scale: r.scale };
}

/** What tfjs computes on load, in float32 as it stores it. */
export function dequantizeAffine(q: AffineQuantized): Float32Array {
  const out = new Float32Array(q.codes.length);
  for (let i = 0; i < out.length; i++) out[i] = q.codes[i] * q.scale + q.min;
  return out;
}

/** IEEE half-precision bit patterns (round to nearest even), little-endian as tfjs reads them. */
export function toFloat16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) setFloat16(view, 2 * i, data[i], true);
  return out;
}

/** fnmatch-style `*` and `?` against a whole weight name, as tfjs-converter's `--quantize_uint8 'conv*'`. */
export function globMatch(pattern: string, name: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/**
 * Which dtype each weight gets. `layers` maps a dtype to weight-name patterns; a weight matched by
 * none of them gets `mode` (which may be `none`, leaving it float32). Only float32 weights are
 * quantized: integer weights (none in these models, but tfjs allows them) keep their exact values.
 */
export function planQuantization(
  specs: tf.io.WeightsManifestEntry[],
  mode: QuantizeMode,
  layers: Partial<Record<QuantizedDtype, string[]>> = {},
): Map<string, QuantizedDtype> {
  const plan = new Map<string, QuantizedDtype>();
  for (const s of specs) {
    if (s.dtype !== undefined && s.dtype !== 'float32') continue;
    const hits = (Object.entries(layers) as Array<[QuantizedDtype, string[]]>).filter(([, ps]) => ps.some((p) => globMatch(p, s.name)));
    const dtypes = [...new Set(hits.map(([d]) => d))];
    if (dtypes.length > 1) throw new Error(`weight ${s.name} matches patterns of ${dtypes.join(' and ')}`);
    const d = dtypes[0] ?? (mode === 'none' ? undefined : mode);
    if (d) plan.set(s.name, d);
  }
  return plan;
}

/**
 * Rewrites a weights manifest and its concatenated buffer with every planned weight quantized;
 * unplanned weights are copied as they are. The result is what `tf.loadLayersModel` expects.
 */
export function quantizeWeights(
  specs: tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
  plan: Map<string, QuantizedDtype>,
): { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const bytes = 4 * n; // float32 and int32 alike; these models carry no string or bool weights
    const dtype = plan.get(s.name);
    const raw = new Uint8Array(data, offset, bytes);
    offset += bytes;
    if (!dtype) {
      parts.push(raw);
      out.push({ ...s });
      continue;
    }
    const values = new Float32Array(data.slice(raw.byteOffset, raw.byteOffset + bytes));
    if (dtype === 'float16') {
      parts.push(new Uint8Array(toFloat16(values).buffer));
      out.push({ ...s, quantization: { dtype: 'float16' } });
    } else {
      const q = quantizeAffine(values, dtype);
      parts.push(new Uint8Array(q.codes.buffer));
      out.push({ ...s, quantization: { dtype, min: q.min, scale: q.scale } });
    }
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const buf = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  return { specs: out, data: buf.buffer };
}

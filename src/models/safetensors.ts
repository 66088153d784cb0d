import * as fs from 'node:fs';
import { ModelFormatError } from '../errors';

/**
 * A strict reader for the safetensors format (https://huggingface.co/docs/safetensors):
 *   u64 little-endian N | N bytes of JSON header | data buffer.
 * The header maps tensor names to {dtype, shape, data_offsets:[begin,end]} (offsets relative to
 * the data buffer) plus an optional string→string `__metadata__`. Everything is validated before
 * any tensor is decoded, so a hostile or truncated file fails with the offending field named.
 */

/** The reference implementation refuses headers over 100 MB; real headers are a few hundred kB. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** Dtypes we can turn into float32 model weights. */
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F64', 'F32', 'F16', 'BF16']);

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte offsets into the data buffer (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  /** For error messages. */
  file: string;
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
  /** The data buffer (a view; offsets in TensorInfo are relative to it). */
  data: Uint8Array;
}

export interface ParseOptions {
  maxHeaderBytes?: number;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses and validates a whole safetensors file held in memory. */
export function parseSafetensors(bytes: Uint8Array, file: string, opts: ParseOptions = {}): SafetensorsFile {
  const cap = opts.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (bytes.length < 8) throw new ModelFormatError(file, `safetensors header length: file has ${bytes.length} bytes, fewer than the 8-byte length prefix`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(cap)) throw new ModelFormatError(file, `safetensors header length: ${n64} bytes exceeds the ${cap}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) {
    throw new ModelFormatError(file, `safetensors header length: ${n} bytes runs past the end of the ${bytes.length}-byte file`);
  }
  const headerText = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let text: string;
  try {
    text = headerText.decode(bytes.subarray(8, 8 + n));
  } catch {
    throw new ModelFormatError(file, 'safetensors header: not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(file, `safetensors header: not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new ModelFormatError(file, 'safetensors header: must be a JSON object');
  }
  const data = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
        throw new ModelFormatError(file, 'safetensors header field __metadata__: must be an object of strings');
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new ModelFormatError(file, `safetensors header field __metadata__.${k}: must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, validateEntry(file, name, entry, data.length));
  }
  checkCoverage(file, [...tensors.values()], data.length);
  return { file, metadata, tensors, data };
}

function validateEntry(file: string, name: string, entry: unknown, dataLength: number): TensorInfo {
  const field = (f: string): string => `safetensors header field "${name}".${f}`;
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    throw new ModelFormatError(file, `safetensors header field "${name}": must be an object with dtype, shape, data_offsets`);
  }
  const e = entry as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw new ModelFormatError(file, `${field(k)}: unknown field`);
  }
  if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
    throw new ModelFormatError(file, `${field('dtype')}: ${JSON.stringify(e.dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  const dtype = e.dtype as SafetensorsDtype;
  if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
    throw new ModelFormatError(file, `${field('shape')}: must be an array of non-negative integers, got ${JSON.stringify(e.shape)}`);
  }
  const shape = e.shape as number[];
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt)) {
    throw new ModelFormatError(file, `${field('data_offsets')}: must be [begin, end] non-negative integers, got ${JSON.stringify(offs)}`);
  }
  const [begin, end] = offs as number[];
  if (begin > end || end > dataLength) {
    throw new ModelFormatError(file, `${field('data_offsets')}: [${begin}, ${end}] is out of range of the ${dataLength}-byte data buffer`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const expected = count * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw new ModelFormatError(file, `${field('data_offsets')}: spans ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`);
  }
  return { name, dtype, shape, begin, end };
}

/** The format forbids overlapping tensors and holes (which would let a file hide other content). */
function checkCoverage(file: string, infos: TensorInfo[], dataLength: number): void {
  const sorted = [...infos].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  let at = 0;
  for (const t of sorted) {
    if (t.begin < at) throw new ModelFormatError(file, `safetensors header field "${t.name}".data_offsets: overlaps the previous tensor`);
    if (t.begin > at) throw new ModelFormatError(file, `safetensors header field "${t.name}".data_offsets: leaves a hole at bytes ${at}..${t.begin}`);
    at = t.end;
  }
  if (at !== dataLength) {
    throw new ModelFormatError(file, `safetensors data: ${dataLength - at} trailing bytes after the last tensor are not described by the header`);
  }
}

export function readSafetensors(file: string, opts: ParseOptions = {}): SafetensorsFile {
  const cant = (e: unknown) => new ModelFormatError(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  let bytes: Buffer;
  try {
    // stat first: opening a FIFO would block, and reading a file before checking its header allocates it whole
    const st = fs.statSync(file);
    if (!st.isFile()) throw new ModelFormatError(file, 'not a regular file');
    checkHeaderLength(file, st.size, opts);
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw e instanceof ModelFormatError ? e : cant(e);
  }
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file, opts);
}

/** The 8-byte header length against the cap and the file size, reading those 8 bytes only. */
function checkHeaderLength(file: string, size: number, opts: ParseOptions): void {
  if (size < 8) return; // parseSafetensors names this case
  const prefix = Buffer.alloc(8);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, prefix, 0, 8, 0);
  } finally {
    fs.closeSync(fd);
  }
  const cap = opts.maxHeaderBytes ?? MAX_HEADER_BYTES;
  const n = prefix.readBigUInt64LE(0);
  if (n > BigInt(cap)) throw new ModelFormatError(file, `safetensors header length: ${n} bytes exceeds the ${cap}-byte limit`);
  if (8n + n > BigInt(size)) throw new ModelFormatError(file, `safetensors header length: ${n} bytes runs past the end of the ${size}-byte file`);
}

/** IEEE 754 binary16 → number (subnormals, infinities and NaN included). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Decodes one floating-point tensor to float32, whatever its stored float dtype. */
export function tensorAsFloat32(st: SafetensorsFile, name: string): Float32Array {
  const info = st.tensors.get(name);
  if (!info) throw new ModelFormatError(st.file, `tensor "${name}": not in the file`);
  if (!FLOAT_DTYPES.has(info.dtype)) throw new ModelFormatError(st.file, `tensor "${name}".dtype: ${info.dtype} is not a floating-point type`);
  const bytes = st.data.subarray(info.begin, info.end);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = info.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  switch (info.dtype) {
    case 'F32':
      if (LITTLE_ENDIAN)
        out.set(new Float32Array(bytes.slice().buffer)); // slice() realigns to 4 bytes
      else for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16': {
      // 65536-entry table: decoding a 25M-weight ResNet-50 stays a table lookup per value
      const table = halfTable();
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(2 * i, true)];
      break;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) u32[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let HALF_TABLE: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = halfToFloat(h);
  }
  return HALF_TABLE;
}

/** Serialises tensors to safetensors bytes; used by tests to craft files and by tools to write fixtures. */
export function encodeSafetensors(
  tensors: Array<{ name: string; dtype: SafetensorsDtype; shape: number[]; bytes: Uint8Array }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.bytes.length] };
    at += t.bytes.length;
  }
  let json = JSON.stringify(header);
  // pad the header with spaces so the data starts 8-byte aligned, as the reference writer does
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const head = Buffer.from(json, 'utf-8');
  const out = new Uint8Array(8 + head.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let off = 8 + head.length;
  for (const t of tensors) {
    out.set(t.bytes, off);
    off += t.bytes.length;
  }
  return out;
}

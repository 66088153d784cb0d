import * as fs from 'node:fs';
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, wasmHeap, withScratch } from './module';
import { kernelPath } from './kernel-build';

/** Exports of csrc/winograd.c; pointers are byte offsets into tfjs-wasm's heap. */
interface WinogradExports {
  wino_filter(w: number, U: number, tmp: number, CI: number, CO: number, flip: number, m: number): void;
  wino_conv3x3(
    x: number,
    U: number,
    bias: number,
    y: number,
    scratch: number,
    N: number,
    H: number,
    W: number,
    K: number,
    J: number,
    act: number,
    m: number,
    BT: number,
  ): void;
  wino_bp_filter(x: number, dy: number, dw: number, scratch: number, N: number, H: number, W: number, K: number, J: number, m: number, BT: number): void;
}

export const WINOGRAD_WASM_PATH = kernelPath('winograd', 'simd128');
export const WINOGRAD_FMA_WASM_PATH = kernelPath('winograd', 'fma');

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, WinogradExports>();

function winogradKernels(backend: BackendWasm): WinogradExports {
  const mem = wasmHeap(backend);
  let inst = instances.get(mem);
  if (inst === undefined) {
    compiled ??= new WebAssembly.Module(fs.readFileSync(kernelPath('winograd')));
    inst = new WebAssembly.Instance(compiled, { env: { memory: mem } }).exports as unknown as WinogradExports;
    instances.set(mem, inst);
  }
  return inst;
}

/** csrc SKEW: floats of padding between the transform planes of U, V and M. */
const SKEW = 16;

export type WinogradActivation = 'linear' | 'relu' | 'relu6';
const ACT: Record<WinogradActivation, number> = { linear: 0, relu: 1, relu6: 2 };

/** The conv attributes as tfjs kernels receive them (Conv2D/FusedConv2D attrs can be passed as they are). */
export interface ConvAttrs {
  strides?: number | [number, number];
  pad?: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dilations?: number | [number, number];
  dataFormat?: string;
}

export interface WinogradOptions {
  /** Run even where winogradWorthIt says the GEMM is faster (tests, benchmarks). */
  force?: boolean;
  /** Output tile: F(2x2,3x3) or F(4x4,3x3). Default: winogradTile(H, W). */
  m?: 2 | 4;
  /** Tiles per block (multiple of 4). Default: tileBlock(). */
  tileBlock?: number;
}

/**
 * Output tile m of F(m x m, 3x3) for H x W images: the one with fewer products (T * tiles) counting the partial tiles
 * at the edges; F(4x4) on ties (its transforms are cheaper per output). 4 for all of ResNet's layers (7x7 included:
 * 4 tiles of 36 vs 16 of 16).
 */
export function winogradTile(h: number, w: number): 2 | 4 {
  return 36 * Math.ceil(h / 4) * Math.ceil(w / 4) <= 16 * Math.ceil(h / 2) * Math.ceil(w / 2) ? 4 : 2;
}

/**
 * Fewest output channels (J: CO forward, the forward conv's CI for dX) for which Winograd is used by default.
 * Measured at batch 16, 56x56, F(4,3), one thread: forward 64->4 channels 6.1 ms vs 14.0 (XNNPACK) / 16.1 (our
 * GEMM); dX of a 3->64 conv (J = 3) 9.8 ms vs 8.5 for our GEMM, of a 4->64 conv 9.5 vs 11.6.
 */
export const WINOGRAD_MIN_CHANNELS = 4;

/**
 * Whether Winograd's multiply-adds per channel pair stay under 3/4 of the direct conv's 9*N*H*W (the tile transforms
 * take the rest): T per tile (partial edge tiles included) plus ~4*T per call for the transformed filter U (the dW
 * accumulators for the filter gradient), T*K*J floats written and read back from memory. Fitted to: 4x4x512->512
 * loses at batch 1 (6.1 vs 4.3 ms forward, 6.0 vs 3.2 dX, 8.0 vs 3.8 dW) and 2 (6.0 vs 6.5, 6.6 vs 4.9, 8.0 vs 6.2),
 * wins at 4 (5.7 vs 9.8, 6.8 vs 8.1, 8.9 vs 11.5); 7x7x512->512 wins at batch 1 (6.0 vs 8.7, 6.3 vs 7.9, 9.6 vs 10.2);
 * 2x2 and 3x3 images win at batch 16; 1-pixel rows or columns waste most of each tile.
 */
function winogradCheaper(n: number, h: number, w: number): boolean {
  const m = winogradTile(h, w),
    t = (m + 2) * (m + 2),
    tiles = n * Math.ceil(h / m) * Math.ceil(w / m);
  return t * (tiles + 4) < 0.75 * 9 * n * h * w;
}

/**
 * Whether Winograd beats the direct kernels for a 3x3 stride-1 'same' conv of N x H x W images with K input and J
 * output channels (for dX: K = the forward conv's CO, J = its CI). Measured (batch 16, one thread) faster than
 * both XNNPACK and our GEMM for every shape tried with K >= 3 and J >= 4, images down to 2x2: 2.5-3.8x on ResNet's
 * layers, 1.3-2x at 4-16 channels (56x56x16->16: 4.3 vs 10.9 ms; 3->64 forward: 7.1 vs 9.1; 1->16: 1.0 vs 1.1,
 * a wash, so K >= 2); small batches of small deep images lose (winogradCheaper).
 */
export function winogradWorthIt(n: number, h: number, w: number, k: number, j: number): boolean {
  return k >= 2 && j >= WINOGRAD_MIN_CHANNELS && winogradCheaper(n, h, w);
}

function pair(v: number | [number, number] | undefined): [number, number] {
  return v === undefined ? [1, 1] : typeof v === 'number' ? [v, v] : v;
}

/** 3x3, stride 1, dilation 1, NHWC, padding 'same' / 1 / explicit [[0,0],[1,1],[1,1],[0,0]]. */
function applies(filterShape: readonly number[], conv: ConvAttrs): boolean {
  if (filterShape.length !== 4 || filterShape[0] !== 3 || filterShape[1] !== 3) return false;
  if (conv.dataFormat !== undefined && conv.dataFormat !== 'NHWC' && conv.dataFormat !== 'channelsLast') return false;
  const s = pair(conv.strides),
    d = pair(conv.dilations);
  if (s[0] !== 1 || s[1] !== 1 || d[0] !== 1 || d[1] !== 1) return false;
  const p = conv.pad ?? 'same';
  if (p === 'same' || p === 1) return true;
  if (Array.isArray(p)) {
    const e = p as number[][];
    return (
      e.length === 4 && e[0][0] === 0 && e[0][1] === 0 && e[1][0] === 1 && e[1][1] === 1 && e[2][0] === 1 && e[2][1] === 1 && e[3][0] === 0 && e[3][1] === 0
    );
  }
  return false;
}

/**
 * Tiles per block. Each block streams the whole transformed filter U (T*K*J floats) through its GEMMs, which do
 * T*BT*K*J multiply-adds: BT/2 flops per byte of U. Measured (batch 16, F(4,3)): 16 to 128 tiles make no
 * difference up to 256 channels; at 512 (U = 36 MB) 16 tiles took 40 ms, 64 33 ms, 128 31.5 ms.
 */
export function tileBlock(m: 2 | 4, k: number, j: number): number {
  void m;
  return k * ((j + 7) & ~7) >= 1 << 17 ? 128 : 64;
}

/** Bytes of heap scratch one call takes: transformed filter + one block's V and M + transform temporaries. */
export function winogradScratchBytes(n: number, h: number, w: number, k: number, j: number, opts: WinogradOptions = {}): number {
  const m = opts.m ?? winogradTile(h, w),
    t = (m + 2) * (m + 2),
    k4 = (k + 3) & ~3,
    j8 = (j + 7) & ~7;
  const tiles = n * Math.ceil(h / m) * Math.ceil(w / m);
  const bt = Math.min(opts.tileBlock ?? tileBlock(m, k, j), (tiles + 3) & ~3);
  return 4 * (t * (k * j8 + SKEW) + t * (bt * (k4 + j8) + 2 * SKEW) + 4 * t);
}

function run(
  b: BackendWasm,
  input: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | null,
  act: number,
  flip: boolean,
  n: number,
  h: number,
  w: number,
  k: number,
  j: number,
  opts: WinogradOptions,
): TensorInfo {
  const m = opts.m ?? winogradTile(h, w),
    t = (m + 2) * (m + 2),
    j8 = (j + 7) & ~7;
  const tiles = n * Math.ceil(h / m) * Math.ceil(w / m);
  const bt = Math.min(opts.tileBlock ?? tileBlock(m, k, j), (tiles + 3) & ~3);
  if (bt <= 0 || bt % 4 !== 0) throw new Error(`winograd tile block must be a positive multiple of 4, got ${bt}`);
  const [, , ci, co] = filter.shape;
  const y = b.makeOutput([n, h, w, j], 'float32');
  const uFloats = t * (k * j8 + SKEW);
  withScratch(b, winogradScratchBytes(n, h, w, k, j, { m, tileBlock: bt }), (s) => {
    const kern = winogradKernels(b);
    const conv = s + 4 * uFloats;
    kern.wino_filter(offsetOf(b, filter.dataId), s, conv, ci, co, flip ? 1 : 0, m);
    kern.wino_conv3x3(offsetOf(b, input.dataId), s, bias === null ? 0 : offsetOf(b, bias.dataId), offsetOf(b, y.dataId), conv, n, h, w, k, j, act, m, bt);
  });
  return y;
}

/**
 * y = act(conv2d(x, filter, stride 1, 'same') + bias) by Winograd F(m x m, 3x3), for the kernels that dispatch
 * FusedConv2D / Conv2D. x [N,H,W,CI], filter [3,3,CI,CO], bias [CO] or null. Returns null, computing nothing,
 * where it does not apply (not float32, not 3x3, stride or dilation != 1, padding other than 'same'/1, NCHW)
 * or, unless opts.force, where winogradWorthIt says the direct GEMM is faster: the caller falls back.
 */
export function winogradConv3x3(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  bias: TensorInfo | null,
  activation: WinogradActivation = 'linear',
  conv: ConvAttrs = {},
  opts: WinogradOptions = {},
): TensorInfo | null {
  const act = ACT[activation];
  if (
    act === undefined ||
    x.dtype !== 'float32' ||
    filter.dtype !== 'float32' ||
    x.shape.length !== 4 ||
    !applies(filter.shape, conv) ||
    filter.shape[2] !== x.shape[3]
  )
    return null;
  const [n, h, w, ci] = x.shape;
  const co = filter.shape[3];
  if (bias != null && (bias.dtype !== 'float32' || bias.shape.reduce((a, v) => a * v, 1) !== co)) return null;
  if (!opts.force && !winogradWorthIt(n, h, w, ci, co)) return null;
  return run(backend, x, filter, bias ?? null, act, false, n, h, w, ci, co, opts);
}

/**
 * dX of y = conv2d(x, filter, stride 1, 'same') (3x3): the same Winograd conv of dy with the filter rotated 180°
 * and its channels swapped, for the kernel that dispatches Conv2DBackpropInput. dy [N,H,W,CO], filter
 * [3,3,CI,CO], xShape [N,H,W,CI]. Null where it does not apply or (unless opts.force) is not worth it.
 */
export function winogradConv3x3BackpropInput(
  backend: BackendWasm,
  dy: TensorInfo,
  filter: TensorInfo,
  xShape: readonly number[],
  conv: ConvAttrs = {},
  opts: WinogradOptions = {},
): TensorInfo | null {
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32' || dy.shape.length !== 4 || xShape.length !== 4 || !applies(filter.shape, conv)) return null;
  const [n, h, w, ci] = xShape;
  const co = filter.shape[3];
  if (filter.shape[2] !== ci || dy.shape[0] !== n || dy.shape[1] !== h || dy.shape[2] !== w || dy.shape[3] !== co) return null;
  if (!opts.force && !winogradWorthIt(n, h, w, co, ci)) return null;
  return run(backend, dy, filter, null, 0, true, n, h, w, co, ci, opts);
}

/**
 * Tiles per block of the filter gradient (each block re-reads and re-writes the T*CI*CO accumulators). Measured at
 * batch 16, F(4,3): 64 tiles 25.6 ms vs 256 26.5 vs 1024 29.5 on 56x56x64; 22.0 / 23.5 / 24.3 on 28x28x128; flat
 * at 256 and 512 channels.
 */
export function bpFilterTileBlock(m: 2 | 4, k: number, j: number): number {
  void m;
  void k;
  void j;
  return 64;
}

/** Bytes of heap scratch of winogradConv3x3BackpropFilter: the accumulators plus one block's transforms. */
export function winogradBpFilterScratchBytes(n: number, h: number, w: number, k: number, j: number, opts: WinogradOptions = {}): number {
  const m = opts.m ?? winogradTile(h, w),
    t = (m + 2) * (m + 2),
    k4 = (k + 3) & ~3,
    j8 = (j + 7) & ~7;
  const tiles = n * Math.ceil(h / m) * Math.ceil(w / m);
  const bt = Math.min(opts.tileBlock ?? bpFilterTileBlock(m, k, j), tiles);
  return 4 * (t * (k4 * j8 + k4 * bt + j8 * bt + 3 * SKEW) + 4 * t);
}

/**
 * dW of y = conv2d(x, filter, stride 1, 'same') (3x3) by Winograd, for the kernel that dispatches
 * Conv2DBackpropFilter. x [N,H,W,CI], dy [N,H,W,CO], filterShape [3,3,CI,CO]. Null where it does not apply or
 * (unless opts.force) is not worth it.
 */
export function winogradConv3x3BackpropFilter(
  backend: BackendWasm,
  x: TensorInfo,
  dy: TensorInfo,
  filterShape: readonly number[],
  conv: ConvAttrs = {},
  opts: WinogradOptions = {},
): TensorInfo | null {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.length !== 4 || dy.shape.length !== 4 || !applies(filterShape, conv)) return null;
  const [n, h, w, ci] = x.shape;
  const co = filterShape[3];
  if (filterShape[2] !== ci || dy.shape[0] !== n || dy.shape[1] !== h || dy.shape[2] !== w || dy.shape[3] !== co) return null;
  if (!opts.force && !winogradBpFilterWorthIt(n, h, w, ci, co)) return null;
  const m = opts.m ?? winogradTile(h, w);
  const tiles = n * Math.ceil(h / m) * Math.ceil(w / m);
  const bt = Math.min(opts.tileBlock ?? bpFilterTileBlock(m, ci, co), tiles);
  if (!(bt > 0)) throw new Error(`winograd tile block must be positive, got ${bt}`);
  const b = backend;
  const dw = b.makeOutput([3, 3, ci, co], 'float32');
  withScratch(b, winogradBpFilterScratchBytes(n, h, w, ci, co, { m, tileBlock: bt }), (s) =>
    winogradKernels(b).wino_bp_filter(offsetOf(b, x.dataId), offsetOf(b, dy.dataId), offsetOf(b, dw.dataId), s, n, h, w, ci, co, m, bt),
  );
  return dw;
}

/**
 * Whether the Winograd filter gradient beats our conv2d_bp_filter. Measured (batch 16, 56x56 unless noted, F(4,3))
 * faster for every channel count tried: 1->16 1.0 vs 1.3 ms, 3->64 4.4 vs 6.9, 64->3 6.3 vs 20.6, ResNet's layers
 * 2.7-3.5x; so only the size rule (winogradCheaper) applies.
 */
export function winogradBpFilterWorthIt(n: number, h: number, w: number, ci: number, co: number): boolean {
  void ci;
  void co;
  return winogradCheaper(n, h, w);
}

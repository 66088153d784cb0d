import * as fs from 'node:fs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { kernelPath } from './kernel-build';

/** Shape of a depthwise conv's input, output and window (NHWC; CM: channel multiplier; PT/PL: top/left padding). */
type DepthwiseGeometry = [
  N: number,
  H: number,
  W: number,
  C: number,
  OH: number,
  OW: number,
  CM: number,
  KH: number,
  KW: number,
  SH: number,
  SW: number,
  PT: number,
  PL: number,
];
/** Shape of a dense conv's input, output and window (NHWC input, HWIO filter; PT/PL: top/left padding). */
type ConvGeometry = [
  N: number,
  H: number,
  W: number,
  CI: number,
  OH: number,
  OW: number,
  CO: number,
  KH: number,
  KW: number,
  SH: number,
  SW: number,
  PT: number,
  PL: number,
];
/** Shape of a pooling window over an NHWC input. */
type PoolGeometry = [
  N: number,
  H: number,
  W: number,
  C: number,
  OH: number,
  OW: number,
  KH: number,
  KW: number,
  SH: number,
  SW: number,
  PT: number,
  PL: number,
];

/**
 * Exports of csrc/train_kernels.c. Every pointer is a byte offset into tfjs-wasm's own heap; the geometry tuples
 * name the trailing integer arguments in the order the C functions take them.
 */
export interface TrainKernelExports {
  dw_bp_filter(x: number, dy: number, dw: number, ...g: DepthwiseGeometry): void;
  dw_bp_input(dy: number, f: number, dx: number, ...g: DepthwiseGeometry): void;
  /** The 3×3 special case (CM = 1, KH = KW = 3). */
  dw_bp_filter_3x3(
    x: number,
    dy: number,
    dw: number,
    N: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    SH: number,
    SW: number,
    PT: number,
    PL: number,
  ): void;
  bn_train_fwd(
    x: number,
    gamma: number,
    beta: number,
    y: number,
    mean: number,
    variance: number,
    invstd: number,
    scratch: number,
    P: number,
    C: number,
    eps: number,
    hi: number,
    act: number,
  ): void;
  bn_train_bwd(
    dy: number,
    x: number,
    gamma: number,
    beta: number,
    mean: number,
    invstd: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    scratch: number,
    P: number,
    C: number,
    hi: number,
    act: number,
  ): void;
  bn_infer(
    x: number,
    mean: number,
    variance: number,
    offset: number,
    scale: number,
    y: number,
    tmp: number,
    P: number,
    C: number,
    eps: number,
    hi: number,
    act: number,
  ): void;
  bn_frozen_bwd(
    dy: number,
    x: number,
    gamma: number,
    beta: number,
    mean: number,
    variance: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    scratch: number,
    P: number,
    C: number,
    eps: number,
    hi: number,
    act: number,
  ): void;
  clamp_fwd(x: number, y: number, n: number, hi: number): void;
  clamp_bwd(dy: number, x: number, dx: number, n: number, hi: number, hiInclusive: number): void;
  conv2d_bp_filter(x: number, dy: number, dw: number, pack: number, ...g: ConvGeometry): void;
  conv2d_bp_input(dy: number, w: number, dx: number, scratch: number, ...g: ConvGeometry): void;
  conv2d_fwd(x: number, w: number, bias: number, y: number, scratch: number, ...args: [...g: ConvGeometry, act: number, tilePixels: number]): void;
  slice4(
    x: number,
    out: number,
    s1: number,
    s2: number,
    s3: number,
    b0: number,
    b1: number,
    b2: number,
    b3: number,
    z0: number,
    z1: number,
    z2: number,
    z3: number,
  ): void;
  tile4(x: number, out: number, s0: number, s1: number, s2: number, s3: number, o0: number, o1: number, o2: number, o3: number): void;
  maxpool_bp(x: number, dy: number, dx: number, ...g: PoolGeometry): void;
}

/** Pixel tile of conv2d_bp_filter and conv2d_bp_input (csrc PTILE): sizes their scratch. */
export const BPF_PIXEL_TILE = 128;

export const KERNELS_WASM_PATH = kernelPath('train_kernels', 'simd128');
export const KERNELS_FMA_WASM_PATH = kernelPath('train_kernels', 'fma');

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, TrainKernelExports>();

/** The tfjs-wasm heap. Emscripten exports it as `memory` from the instance exports (`asm`). */
export function wasmHeap(backend: BackendWasm): WebAssembly.Memory {
  const asm = (backend.wasm as unknown as { asm?: Record<string, unknown> }).asm;
  const mem = asm?.memory;
  if (!(mem instanceof WebAssembly.Memory)) {
    throw new Error('tfjs-backend-wasm does not expose its WebAssembly.Memory as asm.memory; training kernels cannot attach');
  }
  return mem;
}

/**
 * Our kernels instantiated on the backend's own memory (once per memory). Instantiation is synchronous:
 * the module is 8 KB, well under any engine's sync-compile limit.
 */
export function trainKernels(backend: BackendWasm): TrainKernelExports {
  const mem = wasmHeap(backend);
  let inst = instances.get(mem);
  if (inst === undefined) {
    compiled ??= new WebAssembly.Module(fs.readFileSync(kernelPath('train_kernels')));
    const instance = new WebAssembly.Instance(compiled, { env: { memory: mem } });
    inst = instance.exports as unknown as TrainKernelExports;
    instances.set(mem, inst);
  }
  return inst;
}

/** Byte offset of a tensor's data in the heap (stable across memory growth; views are not). */
export function offsetOf(backend: BackendWasm, dataId: object): number {
  return backend.dataIdMap.get(dataId).memoryOffset;
}

/**
 * Runs f with `bytes` of scratch from tfjs's own allocator (16-byte aligned by emscripten's malloc).
 * Freed even if f throws. Allocation may grow the memory; offsets stay valid, JS views do not.
 */
export function withScratch<T>(backend: BackendWasm, bytes: number, f: (ptr: number) => T): T {
  const wasm = backend.wasm as unknown as { _malloc(n: number): number; _free(p: number): void };
  const ptr = wasm._malloc(Math.max(16, bytes));
  if (ptr === 0) throw new Error(`wasm heap exhausted allocating ${bytes} bytes of kernel scratch`);
  try {
    return f(ptr);
  } finally {
    wasm._free(ptr);
  }
}

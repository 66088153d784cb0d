import * as fs from 'fs';
import * as path from 'path';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/** Exports of csrc/train_kernels.c. Every pointer is a byte offset into tfjs-wasm's own heap. */
export interface TrainKernelExports {
  conv2d_bp_filter(x: number, dy: number, dw: number, N: number, H: number, W: number, CI: number,
    OH: number, OW: number, CO: number, KH: number, KW: number, SH: number, SW: number, PT: number, PL: number): void;
  dw_bp_filter(x: number, dy: number, dw: number, N: number, H: number, W: number, C: number,
    OH: number, OW: number, CM: number, KH: number, KW: number, SH: number, SW: number, PT: number, PL: number): void;
  dw_bp_input(dy: number, f: number, dx: number, N: number, H: number, W: number, C: number,
    OH: number, OW: number, CM: number, KH: number, KW: number, SH: number, SW: number, PT: number, PL: number): void;
}

export const KERNELS_WASM_PATH = path.join(__dirname, 'train_kernels.wasm');

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
    compiled ??= new WebAssembly.Module(fs.readFileSync(KERNELS_WASM_PATH));
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

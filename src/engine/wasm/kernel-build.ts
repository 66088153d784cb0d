import * as path from 'node:path';
import * as v8 from 'node:v8';

/**
 * Which build of the C kernels (csrc/) runs. Both are committed:
 *  - 'simd128': plain wasm SIMD, multiply then add (two roundings); runs on every Node layertune supports;
 *  - 'fma': the same sources with relaxed SIMD's f32x4.relaxed_madd in the GEMM inner loops, one
 *    instruction where the CPU has FMA. Relaxed SIMD is on by default from Node 22 (V8 11.4); Node 20
 *    has it behind --experimental-wasm-relaxed-simd.
 * The builds round differently, so a run is bit-reproducible within one build, not across them.
 */
export type KernelBuild = 'simd128' | 'fma';

export const KERNEL_BUILD_ENV = 'LAYERTUNE_KERNELS';

/**
 * The smallest module using the instruction: (func (param v128 v128 v128) (result v128)
 * local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd). 0xfd 0x85 0x02 is the standard opcode;
 * clang 14's pre-standard one (0xfd 0xaf 0x01) validates nowhere, which is why the FMA build needs clang 16.
 */
const RELAXED_MADD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b,
  0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

/** Whether this runtime validates relaxed-SIMD madd, turning V8's flag on first where it is off by default. */
export function relaxedSimdAvailable(): boolean {
  if (WebAssembly.validate(RELAXED_MADD_PROBE)) return true;
  try {
    // Node 20: the feature exists behind a flag; setting it before any module using it compiles is enough
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return WebAssembly.validate(RELAXED_MADD_PROBE);
}

let chosen: KernelBuild | undefined;

/**
 * The build for this process, decided once: `LAYERTUNE_KERNELS=simd128|fma` forces one (an FMA request
 * the runtime cannot run is an error, not a silent fallback), anything else picks FMA where it validates.
 */
export function kernelBuild(): KernelBuild {
  if (chosen) return chosen;
  const forced = process.env[KERNEL_BUILD_ENV];
  if (forced !== undefined && forced !== '' && forced !== 'auto' && forced !== 'simd128' && forced !== 'fma') {
    throw new Error(`${KERNEL_BUILD_ENV}: "${forced}" is not one of auto, simd128, fma`);
  }
  if (forced === 'simd128') chosen = 'simd128';
  else if (forced === 'fma') {
    if (!relaxedSimdAvailable()) throw new Error(`${KERNEL_BUILD_ENV}=fma: this runtime (Node ${process.versions.node}) does not validate wasm relaxed SIMD`);
    chosen = 'fma';
  } else chosen = relaxedSimdAvailable() ? 'fma' : 'simd128';
  return chosen;
}

/** Path of a committed kernel binary (`train_kernels`, `winograd`) in the chosen build. */
export function kernelPath(base: string, build: KernelBuild = kernelBuild()): string {
  return path.join(__dirname, build === 'fma' ? `${base}_fma.wasm` : `${base}.wasm`);
}

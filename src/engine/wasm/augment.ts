import * as fs from 'node:fs';
import type { DecodedImage } from '../../data/decode';
import type { PixelRect } from '../../data/eval-crop';
import type { ChannelMap } from '../../data/color-jitter';
import type { AxisWeights } from '../../data/resize-crop';
import { kernelPath } from './kernel-build';

/**
 * Exports of csrc/augment_kernels.c. Pointers are byte offsets into the module's private memory; `mats` holds 6
 * doubles per image, `fill` one double per channel, `shift` one double per image, `coef` 3 doubles per image.
 */
interface AugmentKernelExports {
  resample_u8(src: number, out: number, mats: number, fill: number, n: number, size: number, ch: number, reflect: number): void;
  resample_f32(src: number, out: number, mats: number, fill: number, n: number, size: number, ch: number, reflect: number): void;
  hue_shift(px: number, shift: number, n: number, per: number): void;
  jitter_u8(src: number, out: number, coef: number, post: number, n: number, per: number, total: number): void;
  jitter_f32(src: number, out: number, coef: number, post: number, n: number, per: number, total: number): void;
  crop_resize(
    src: number,
    width: number,
    top: number,
    left: number,
    h: number,
    out: number,
    size: number,
    xs: number,
    xn: number,
    xw: number,
    xtaps: number,
    ys: number,
    yn: number,
    yw: number,
    ytaps: number,
    tmp: number,
  ): void;
}

/** Where the augmentation pixel maths runs: the C kernels (default) or the JavaScript reference loops. */
export type AugmentKernelMode = 'wasm' | 'js';

export const AUG_KERNELS_ENV = 'LAYERTUNE_AUG_KERNELS';

/** The mode of this process, read from LAYERTUNE_AUG_KERNELS each call (tests switch it); a wrong value is an error. */
export function augmentKernelMode(): AugmentKernelMode {
  const v = process.env[AUG_KERNELS_ENV];
  if (v === undefined || v === '' || v === 'wasm') return 'wasm';
  if (v === 'js') return 'js';
  throw new Error(`${AUG_KERNELS_ENV}: "${v}" is not one of wasm, js`);
}

export const AUGMENT_WASM_PATH = kernelPath('augment_kernels', 'simd128');
export const AUGMENT_FMA_WASM_PATH = kernelPath('augment_kernels', 'fma');

const PAGE = 65536;
const align16 = (n: number) => (n + 15) & ~15;

/**
 * The module on its own memory, not tfjs's heap: augmentation runs on every backend and its pixels are host arrays,
 * so each call copies its inputs in and its output out (a few milliseconds per batch against the loops it replaces).
 */
export class AugmentKernels {
  private readonly memory = new WebAssembly.Memory({ initial: 1 });
  private readonly k: AugmentKernelExports;

  constructor() {
    const mod = new WebAssembly.Module(fs.readFileSync(kernelPath('augment_kernels')));
    this.k = new WebAssembly.Instance(mod, { env: { memory: this.memory } }).exports as unknown as AugmentKernelExports;
  }

  /** Offsets of consecutive 16-byte-aligned regions of the given byte sizes, the memory grown to hold them. */
  private layout(bytes: number[]): number[] {
    const at: number[] = [];
    let end = 0;
    for (const b of bytes) {
      at.push(end);
      end = align16(end + b);
    }
    const have = this.memory.buffer.byteLength;
    if (end > have) this.memory.grow(Math.ceil((end - have) / PAGE));
    return at;
  }

  /** Size of the private memory: it grows to the largest batch seen and stays there. */
  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  resample(src: Uint8Array | Float32Array, n: number, size: number, ch: number, mats: number[][], fill: number[] | null): Float32Array {
    const count = n * size * size * ch;
    const [pSrc, pOut, pMats, pFill] = this.layout([src.byteLength, 4 * count, 8 * 6 * n, 8 * Math.max(ch, 1)]);
    const buf = this.memory.buffer;
    (src instanceof Uint8Array ? new Uint8Array(buf, pSrc, count) : new Float32Array(buf, pSrc, count)).set(src.subarray(0, count));
    const m = new Float64Array(buf, pMats, 6 * n);
    mats.forEach((row, k) => m.set(row, 6 * k));
    if (fill) new Float64Array(buf, pFill, ch).set(fill.slice(0, ch));
    (src instanceof Uint8Array ? this.k.resample_u8 : this.k.resample_f32)(pSrc, pOut, pMats, pFill, n, size, ch, fill ? 0 : 1);
    return new Float32Array(this.memory.buffer, pOut, count).slice();
  }

  /** src (n images of `per` RGB pixels, left as it is) with each image's hue shifted, as a new array. */
  hueShift(src: Float32Array, shift: number[], per: number): Float32Array {
    const n = shift.length;
    const count = n * per * 3;
    const [pPx, pShift] = this.layout([4 * count, 8 * n]);
    const buf = this.memory.buffer;
    new Float32Array(buf, pPx, count).set(src.subarray(0, count));
    new Float64Array(buf, pShift, n).set(shift);
    this.k.hue_shift(pPx, pShift, n, per);
    return new Float32Array(this.memory.buffer, pPx, count).slice();
  }

  /**
   * src (images of `per` RGB pixels) through each image's colour map (a, b, c), then each channel's normalisation
   * v·mul + add, as a new array: see jitterReference.
   */
  jitter(src: Uint8Array | Float32Array, coef: number[][], per: number, post: ChannelMap): Float32Array {
    const n = coef.length;
    const count = n * per * 3;
    const [pSrc, pOut, pCoef, pPost] = this.layout([src.BYTES_PER_ELEMENT * count, 4 * count, 8 * 3 * n, 8 * 6]);
    const buf = this.memory.buffer;
    (src instanceof Uint8Array ? new Uint8Array(buf, pSrc, count) : new Float32Array(buf, pSrc, count)).set(src.subarray(0, count));
    const c = new Float64Array(buf, pCoef, 3 * n);
    coef.forEach((row, k) => c.set(row, 3 * k));
    new Float64Array(buf, pPost, 6).set([...post.mul, ...post.add]);
    (src instanceof Uint8Array ? this.k.jitter_u8 : this.k.jitter_f32)(pSrc, pOut, pCoef, pPost, n, per, count);
    return new Float32Array(this.memory.buffer, pOut, count).slice();
  }

  /** `rect` of the copy resized to size×size 8-bit RGB through the two axes' filters: see cropResizeReference. */
  cropResize(copy: DecodedImage, rect: PixelRect, size: number, xw: AxisWeights, yw: AxisWeights): Uint8Array {
    const [top, left, h] = rect;
    // the row pass reads one byte past a pixel and stores one float past it: src and tmp have room
    const bytes = [
      copy.pixels.byteLength + 4,
      size * size * 3,
      4 * size,
      4 * size,
      4 * xw.w.length,
      4 * size,
      4 * size,
      4 * yw.w.length,
      4 * (h * size * 3 + 1),
    ];
    const [pSrc, pOut, pXs, pXn, pXw, pYs, pYn, pYw, pTmp] = this.layout(bytes);
    const buf = this.memory.buffer;
    new Uint8Array(buf, pSrc, copy.pixels.length).set(copy.pixels);
    new Int32Array(buf, pXs, size).set(xw.start);
    new Int32Array(buf, pXn, size).set(xw.count);
    new Float32Array(buf, pXw, xw.w.length).set(xw.w);
    new Int32Array(buf, pYs, size).set(yw.start);
    new Int32Array(buf, pYn, size).set(yw.count);
    new Float32Array(buf, pYw, yw.w.length).set(yw.w);
    this.k.crop_resize(pSrc, copy.width, top, left, h, pOut, size, pXs, pXn, pXw, xw.taps, pYs, pYn, pYw, yw.taps, pTmp);
    return new Uint8Array(this.memory.buffer, pOut, size * size * 3).slice();
  }
}

let instance: AugmentKernels | undefined;

/** The kernels, or null when LAYERTUNE_AUG_KERNELS=js asks for the JavaScript loops. */
export function augmentKernels(): AugmentKernels | null {
  if (augmentKernelMode() === 'js') return null;
  instance ??= new AugmentKernels();
  return instance;
}

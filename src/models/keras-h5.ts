import * as fs from 'node:fs';
import { ModelFormatError } from '../errors';
import { buildArch } from './arch';
import { mobileNetV2Channels, MOBILENET_V2_ALPHAS } from './arch/mobilenet-v2';
import { formatAlpha } from './arch/common';
import { RESNET_LAYOUT, type ResNetDepth } from './arch/resnet';
import { type KerasWeightMap, loadKerasWeights } from './keras-weights';
import { backboneFromBuilt, disposeBuilt, type LoadedBackbone } from './torch-source';

/**
 * Keras 2 HDF5 weights (`model.save_weights('x.h5')`, the keras.applications downloads in
 * ~/.keras/models, or a full `model.save('x.h5')` whose weights sit under /model_weights):
 *   root.attrs.layer_names = [layer, …]; /<layer>.attrs.weight_names = ['<layer>/kernel:0', …];
 *   datasets at /<layer>/<weight name>.
 * Read with h5wasm (the HDF5 C library compiled to wasm; ESM-only, hence the dynamic import).
 */

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

// tsconfig resolves modules the node10 way, which ignores package `exports`, and a specifier naming
// h5wasm's declaration file would still resolve to its .ts source (not strict under our flags): the
// `h5wasm-types` alias in tsconfig.json `paths` names the .d.ts exactly. Type-only, erased at run time;
// the specifier stays in a variable so only Node resolves the real module.
type H5Module = typeof import('h5wasm-types');
const H5WASM_NODE = 'h5wasm/node';
type H5Group = InstanceType<H5Module['Group']>;
type H5Dataset = InstanceType<H5Module['Dataset']>;

let h5: Promise<H5Module> | undefined;
async function h5wasm(): Promise<H5Module> {
  if (!h5) {
    h5 = (import(H5WASM_NODE) as Promise<H5Module>).then(async (m) => {
      await m.ready;
      return m;
    });
  }
  return h5;
}

function hasHdf5Signature(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const n = fs.readSync(fd, head, 0, 8, 0);
    return n === 8 && HDF5_SIGNATURE.every((b, i) => head[i] === b);
  } finally {
    fs.closeSync(fd);
  }
}

/** Attribute values come back as a string or an array of strings (fixed- or variable-length). */
function stringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  return undefined;
}

/** Reads every weight of a Keras 2 .h5 into `layer/slot` names; values decode lazily. */
export async function loadH5wasm(): Promise<H5Module> {
  return h5wasm();
}

export async function readKerasH5(file: string): Promise<{ weights: KerasWeightMap; layers: string[]; close: () => void }> {
  if (!fs.existsSync(file)) throw new ModelFormatError(file, 'no such file');
  if (!hasHdf5Signature(file)) throw new ModelFormatError(file, 'not an HDF5 file (no HDF5 signature at byte 0)');
  const m = await h5wasm();
  let f: InstanceType<H5Module['File']>;
  try {
    f = new m.File(file, 'r');
  } catch (e) {
    throw new ModelFormatError(file, `HDF5 could not open it: ${(e as Error).message}`);
  }
  try {
    const root = (f.keys().includes('model_weights') ? f.get('model_weights') : f) as H5Group;
    const where = root === (f as unknown) ? '' : 'model_weights.';
    const layers = stringList(root.attrs.layer_names?.value);
    if (!layers) {
      throw new ModelFormatError(file, `field ${where}attrs.layer_names: missing (not a Keras 2 weights file; Keras 3 '.weights.h5' files are not supported)`);
    }
    const weights: KerasWeightMap = new Map();
    for (const layer of layers) {
      const g = root.get(layer) as H5Group | null;
      if (!g) throw new ModelFormatError(file, `field ${where}layer_names: lists "${layer}" but the file has no such group`);
      const names = stringList(g.attrs.weight_names?.value ?? []) ?? [];
      for (const wn of names) {
        const ds = g.get(wn) as H5Dataset | null;
        if (!ds?.shape) throw new ModelFormatError(file, `field ${where}${layer}.attrs.weight_names: lists "${wn}" but there is no such dataset`);
        // 'conv1/kernel:0' → 'kernel'; nested names like 'conv1/conv1/kernel:0' end the same way
        const slot = wn.split('/').pop()!.replace(/:\d+$/, '');
        const shape = ds.shape.map(Number);
        weights.set(`${layer}/${slot}`, {
          shape,
          read: () => {
            const v = ds.value;
            if (v instanceof Float32Array) return v;
            if (v instanceof Float64Array || v instanceof Uint16Array || Array.isArray(v)) return Float32Array.from(v as ArrayLike<number>);
            throw new ModelFormatError(file, `dataset ${layer}/${wn}: dtype ${ds.dtype} is not a float type`);
          },
        });
      }
    }
    return { weights, layers, close: () => f.close() };
  } catch (e) {
    f.close();
    throw e;
  }
}

/** Classes of a keras.applications head (`predictions` Dense or MobileNet's `conv_preds` 1×1 conv); 0 if none. */
export function kerasHeadClasses(weights: KerasWeightMap): number {
  const k = weights.get('predictions/kernel') ?? weights.get('conv_preds/kernel');
  return k ? k.shape[k.shape.length - 1] : 0;
}

/** Infers the keras.applications architecture and class count from layer names and shapes. */
export function inferKerasArch(weights: KerasWeightMap, file: string): { arch: string; numClasses: number } {
  const shape = (n: string): number[] | undefined => weights.get(n)?.shape;
  if (shape('conv_pw_13/kernel') && shape('conv1/kernel')) {
    const alpha = shape('conv1/kernel')![3] / 32;
    const head = shape('conv_preds/kernel');
    return { arch: `mobilenet_v1_${formatAlpha(alpha)}`, numClasses: head ? head[3] : 0 };
  }
  if (shape('Conv1/kernel') && shape('block_16_project/kernel') && shape('Conv_1/kernel')) {
    const found = [shape('Conv1/kernel')![3], shape('block_16_project/kernel')![3], shape('Conv_1/kernel')![3]];
    const alpha = MOBILENET_V2_ALPHAS.find((a) => {
      const ch = mobileNetV2Channels(a, 'keras');
      return ch.stem === found[0] && ch.blocks[16] === found[1] && ch.head === found[2];
    });
    if (alpha === undefined)
      throw new ModelFormatError(file, `weights Conv1/block_16_project/Conv_1: widths ${found.join('/')} match no MobileNetV2 width multiplier`);
    return { arch: `mobilenet_v2_${formatAlpha(alpha)}`, numClasses: shape('predictions/kernel')?.[1] ?? 0 };
  }
  if (shape('conv1_conv/kernel') && shape('conv2_block1_1_conv/kernel')) {
    const bottleneck = !!shape('conv2_block1_3_conv/kernel');
    const blocks = [2, 3, 4, 5].map((s) => {
      let i = 1;
      while (shape(`conv${s}_block${i}_1_conv/kernel`)) i++;
      return i - 1;
    });
    const depth = (Object.keys(RESNET_LAYOUT).map(Number) as ResNetDepth[]).find(
      (d) => RESNET_LAYOUT[d].bottleneck === bottleneck && RESNET_LAYOUT[d].blocks.every((n, k) => n === blocks[k]),
    );
    if (!depth) throw new ModelFormatError(file, `layer names conv2..5: ${blocks.join('/')} blocks match no ResNet`);
    return { arch: `resnet${depth}`, numClasses: shape('predictions/kernel')?.[1] ?? 0 };
  }
  throw new ModelFormatError(file, 'layer names: cannot tell the architecture (expected keras.applications MobileNet, MobileNetV2 or ResNet50 names)');
}

/**
 * ResNet50 from Keras wants BGR input; flipping conv1's input-channel axis lets it take RGB like
 * every other backbone (HWIO kernel: reverse the I axis).
 */
export function flipInputChannels(kernel: Float32Array, shape: number[]): Float32Array {
  const [kh, kw, cin, cout] = shape;
  const out = new Float32Array(kernel.length);
  for (let h = 0; h < kh; h++)
    for (let w = 0; w < kw; w++)
      for (let i = 0; i < cin; i++) {
        const src = ((h * kw + w) * cin + i) * cout;
        const dst = ((h * kw + w) * cin + (cin - 1 - i)) * cout;
        out.set(kernel.subarray(src, src + cout), dst);
      }
  return out;
}

export interface KerasH5Options {
  arch?: string;
  inputSize?: number;
}

/** Loads keras.applications weights (.h5) into the architecture built in code (Keras convention). */
export async function loadKerasH5(file: string, opts: KerasH5Options = {}): Promise<LoadedBackbone> {
  const { weights, close } = await readKerasH5(file);
  try {
    // a forced architecture skips inference, so files with unusual names can still be tried
    const inferred = opts.arch ? { arch: opts.arch, numClasses: kerasHeadClasses(weights) } : inferKerasArch(weights, file);
    const arch = inferred.arch;
    const built = buildArch(arch, { convention: 'keras', inputSize: opts.inputSize, numClasses: inferred.numClasses }, file);
    try {
      loadKerasWeights(built, weights, file, {
        transform: arch.startsWith('resnet')
          ? (layer, slot, v, shape) => (layer === 'conv1_conv' && slot === 'kernel' ? flipInputChannels(v, shape) : v)
          : undefined,
      });
    } catch (e) {
      disposeBuilt(built);
      throw e;
    }
    return backboneFromBuilt(built, file, inferred.numClasses);
  } finally {
    close();
  }
}

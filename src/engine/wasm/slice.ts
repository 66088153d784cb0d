import { slice_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { offsetOf, trainKernels } from './module';

/** Left-pads a shape-like list to rank 4 (slice/tile kernels in csrc are 4-D). */
const to4 = (xs: readonly number[], fill: number): number[] => [...Array(4 - xs.length).fill(fill), ...xs];

/**
 * Slice for 32-bit tensors of rank ≤ 4 in one wasm call (row copies with memory.copy). Other dtypes and
 * ranks take the stock kernel.
 */
export function sliceReplacement(stock: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const b = args.backend as BackendWasm;
    const x = args.inputs.x as TensorInfo;
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    if (!(x.dtype === 'float32' || x.dtype === 'int32') || x.shape.length > 4 || x.shape.length === 0) return stock(args);
    const [b_, s_] = slice_util.parseSliceParams(x as never, begin, size);
    const out = b.makeOutput(s_, x.dtype);
    if (s_.some((d) => d === 0)) return out;
    const [xs, bs, zs] = [to4(x.shape, 1), to4(b_, 0), to4(s_, 1)];
    trainKernels(b).slice4(offsetOf(b, x.dataId), offsetOf(b, out.dataId), xs[1], xs[2], xs[3], bs[0], bs[1], bs[2], bs[3], zs[0], zs[1], zs[2], zs[3]);
    return out;
  };
  return { kernelName: 'Slice', backendName: 'wasm', kernelFunc };
}

/** Tile for 32-bit tensors of rank ≤ 4 with memory.copy runs; other dtypes and ranks: stock kernel. */
export function tileReplacement(stock: KernelFunc): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const b = args.backend as BackendWasm;
    const x = args.inputs.x as TensorInfo;
    const reps = (args.attrs as { reps: number[] }).reps;
    if (!(x.dtype === 'float32' || x.dtype === 'int32') || x.shape.length > 4 || x.shape.length === 0) return stock(args);
    const outShape = x.shape.map((d, i) => d * reps[i]);
    const out = b.makeOutput(outShape, x.dtype);
    if (outShape.some((d) => d === 0)) return out;
    const [xs, os] = [to4(x.shape, 1), to4(outShape, 1)];
    trainKernels(b).tile4(offsetOf(b, x.dataId), offsetOf(b, out.dataId), xs[0], xs[1], xs[2], xs[3], os[0], os[1], os[2], os[3]);
    return out;
  };
  return { kernelName: 'Tile', backendName: 'wasm', kernelFunc };
}

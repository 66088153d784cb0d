/**
 * Winograd 3x3 vs the direct kernels on tfjs-wasm, one thread, ResNet-18's 3x3 stride-1 layers.
 *   npx tsx scripts/bench/winograd.ts [--batches 16,8] [--reps 5] [--m 2,4] [--bt auto] [--shapes HxWxCI->CO,...] [--dir fwd,bwd,bwf]
 * Forward: XNNPACK (tf.conv2d, stock Conv2D), our GEMM (csrc conv2d_fwd, called as FusedConv2D calls it when
 * Winograd declines) and FusedConv2D as registered (tf.fused.conv2d: whatever the kernel dispatches to) vs
 * winogradConv3x3 with F(2x2,3x3) / F(4x4,3x3). Input gradient (bwd): our GEMM (csrc conv2d_bp_input) and
 * Conv2DBackpropInput as registered (tf.conv2dTranspose) vs winogradConv3x3BackpropInput; filter gradient (bwf):
 * our GEMM (csrc conv2d_bp_filter) and Conv2DBackpropFilter as registered vs winogradConv3x3BackpropFilter. Every repeat runs each variant once,
 * in turn (A/B interleaved: the machine is shared); medians of the repeats, ms and effective GFLOP/s counting the
 * direct convolution's 2*N*H*W*9*CI*CO.
 *   npx tsx scripts/bench/winograd.ts --accuracy [--batches 2] [--shapes ...]
 * instead prints max |ours - cpu| / max |cpu| of the forward conv, dX and dW for F(2,3) and F(4,3) (inputs
 * uniform in [-1, 1), filter scaled by 1/sqrt(9*CI)), against the cpu backend (dW there: 9 tap matmuls).
 */
import { loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../src/engine/wasm';
import { BPF_PIXEL_TILE, offsetOf, trainKernels, withScratch } from '../../src/engine/wasm/module';
import { tilePixels } from '../../src/engine/wasm/conv_forward';
import {
  bpFilterTileBlock,
  tileBlock,
  winogradBpFilterScratchBytes,
  winogradConv3x3,
  winogradConv3x3BackpropFilter,
  winogradConv3x3BackpropInput,
  winogradScratchBytes,
} from '../../src/engine/wasm/winograd';
import { arg, median } from './stats';

/** ResNet-18's 3x3 stride-1 layers (HxWxCI->CO); --shapes takes any such list. */
const RESNET = '56x56x64->64,28x28x128->128,14x14x256->256,7x7x512->512';

function parseShape(s: string): [number, number, number, number] {
  const m = /^(\d+)x(\d+)x(\d+)->(\d+)$/.exec(s);
  if (!m) throw new Error(`shape ${s}: expected HxWxCI->CO`);
  return [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
}

/** The GEMM paths of conv_forward.ts / conv_grads.ts, called directly (the kernels now try Winograd first). */
function gemmForward(b: BackendWasm, x: tf.Tensor4D, f: tf.Tensor4D, bias: tf.Tensor1D): tf.TensorInfo {
  const [n, h, w, ci] = x.shape;
  const co = f.shape[3],
    m = 9 * ci,
    pt = tilePixels(m);
  const y = b.makeOutput([n, h, w, co], 'float32');
  withScratch(b, 4 * (m * ((co + 7) & ~7) + pt * m), (s) =>
    trainKernels(b).conv2d_fwd(
      offsetOf(b, x.dataId),
      offsetOf(b, f.dataId),
      offsetOf(b, bias.dataId),
      offsetOf(b, y.dataId),
      s,
      n,
      h,
      w,
      ci,
      h,
      w,
      co,
      3,
      3,
      1,
      1,
      1,
      1,
      1,
      pt,
    ),
  );
  return y;
}

function gemmBackpropInput(b: BackendWasm, dy: tf.Tensor4D, f: tf.Tensor4D): tf.TensorInfo {
  const [n, h, w, co] = dy.shape;
  const ci = f.shape[2],
    m8 = (9 * ci + 7) & ~7;
  const dx = b.makeOutput([n, h, w, ci], 'float32');
  withScratch(b, 4 * m8 * (co + BPF_PIXEL_TILE), (s) =>
    trainKernels(b).conv2d_bp_input(offsetOf(b, dy.dataId), offsetOf(b, f.dataId), offsetOf(b, dx.dataId), s, n, h, w, ci, h, w, co, 3, 3, 1, 1, 1, 1),
  );
  return dx;
}

function gemmBackpropFilter(b: BackendWasm, x: tf.Tensor4D, dy: tf.Tensor4D): tf.TensorInfo {
  const [n, h, w, ci] = x.shape;
  const co = dy.shape[3],
    m4 = (9 * ci + 3) & ~3;
  const dw = b.makeOutput([3, 3, ci, co], 'float32');
  withScratch(b, 4 * (m4 + ((co + 7) & ~7)) * BPF_PIXEL_TILE, (s) =>
    trainKernels(b).conv2d_bp_filter(offsetOf(b, x.dataId), offsetOf(b, dy.dataId), offsetOf(b, dw.dataId), s, n, h, w, ci, h, w, co, 3, 3, 1, 1, 1, 1),
  );
  return dw;
}

function timeOnce(f: () => tf.Tensor): number {
  const t0 = performance.now();
  const y = f();
  const ms = performance.now() - t0;
  y.dispose();
  return ms;
}

async function accuracy(shapes: [number, number, number, number][], batches: number[]): Promise<void> {
  console.log('layer              N   F(2,3): fwd      dX       dW     F(4,3): fwd      dX       dW');
  for (const n of batches) {
    for (const [h, w, ci, co] of shapes) {
      await tf.setBackend('cpu');
      const data = tf.tidy(() =>
        [
          tf.randomUniform([n, h, w, ci], -1, 1, 'float32', 1),
          tf.mul(tf.randomUniform([3, 3, ci, co], -1, 1, 'float32', 2), 1 / Math.sqrt(9 * ci)),
          tf.randomUniform([n, h, w, co], -1, 1, 'float32', 3),
        ].map((t) => t.dataSync() as Float32Array),
      );
      const ref = tf.tidy(() => {
        const x = tf.tensor4d(data[0], [n, h, w, ci]),
          f = tf.tensor4d(data[1], [3, 3, ci, co]);
        const dy = tf.tensor4d(data[2], [n, h, w, co]);
        const xp = tf.pad(x, [
            [0, 0],
            [1, 1],
            [1, 1],
            [0, 0],
          ]),
          d = tf.reshape(dy, [n * h * w, co]);
        const taps: tf.Tensor[] = [];
        for (let kh = 0; kh < 3; kh++)
          for (let kw = 0; kw < 3; kw++) {
            taps.push(tf.matMul(tf.reshape(tf.slice(xp, [0, kh, kw, 0], [n, h, w, ci]), [n * h * w, ci]), d, true, false));
          }
        return [tf.conv2d(x, f, 1, 'same'), tf.conv2dTranspose(dy, f, [n, h, w, ci], 1, 'same'), tf.stack(taps)].map((t) => t.dataSync() as Float32Array);
      });
      await tf.setBackend('wasm');
      const b = tf.backend() as BackendWasm;
      const errs: string[] = [];
      for (const m of [2, 4] as const) {
        tf.tidy(() => {
          const x = tf.tensor4d(data[0], [n, h, w, ci]),
            f = tf.tensor4d(data[1], [3, 3, ci, co]);
          const dy = tf.tensor4d(data[2], [n, h, w, co]);
          const opts = { force: true, m };
          const got = [
            winogradConv3x3(b, x, f, null, 'linear', {}, opts),
            winogradConv3x3BackpropInput(b, dy, f, x.shape, {}, opts),
            winogradConv3x3BackpropFilter(b, x, dy, f.shape, {}, opts),
          ].map((t) => tf.engine().makeTensorFromTensorInfo(t!).dataSync());
          got.forEach((g, i) => {
            let num = 0,
              den = 0;
            for (let e = 0; e < g.length; e++) {
              num = Math.max(num, Math.abs(g[e] - ref[i][e]));
              den = Math.max(den, Math.abs(ref[i][e]));
            }
            errs.push((num / den).toExponential(1).padStart(8));
          });
        });
      }
      console.log(`${`${h}x${w}x${ci}->${co}`.padEnd(16)} ${String(n).padStart(3)}  ${errs.slice(0, 3).join(' ')}      ${errs.slice(3).join(' ')}`);
    }
  }
}

async function main(): Promise<void> {
  await tf.setBackend('wasm');
  await tf.ready();
  registerWasmTrainingKernels();
  const b = tf.backend() as BackendWasm;
  const wrap = (t: tf.TensorInfo | null): tf.Tensor => tf.engine().makeTensorFromTensorInfo(t!);
  const batches = arg('batches', '16,8').split(',').map(Number);
  const reps = Number(arg('reps', '5'));
  const ms = arg('m', '2,4').split(',').map(Number) as (2 | 4)[];
  const bts = arg('bt', 'auto').split(',');
  const shapes = arg('shapes', RESNET).split(',').map(parseShape);
  const dirs = arg('dir', 'fwd,bwd,bwf').split(',');
  if (process.argv.includes('--accuracy')) {
    await accuracy(shapes, process.argv.includes('--batches') ? batches : [2]);
    return;
  }
  console.log('dir  layer          N  variant         ms(median)  GFLOP/s   [all ms]');
  for (const batch of batches) {
    for (const [h, w, ci, co] of shapes) {
      const flops = 2 * batch * h * w * 9 * ci * co;
      const x = tf.randomNormal([batch, h, w, ci]) as tf.Tensor4D;
      const dy = tf.randomNormal([batch, h, w, co]) as tf.Tensor4D;
      const f = tf.mul(tf.randomNormal([3, 3, ci, co]), 0.05) as tf.Tensor4D;
      const bias = tf.randomNormal([co]) as tf.Tensor1D;
      for (const dir of dirs) {
        const variants: [string, () => tf.Tensor][] = [];
        if (dir === 'fwd') {
          variants.push(['xnnpack', () => tf.conv2d(x, f, 1, 'same')]);
          variants.push(['gemm', () => wrap(gemmForward(b, x, f, bias))]);
          variants.push(['FusedConv2D', () => tf.fused.conv2d({ x, filter: f, strides: 1, pad: 'same', bias, activation: 'relu' })]);
        } else if (dir === 'bwd') {
          variants.push(['gemm', () => wrap(gemmBackpropInput(b, dy, f))]);
          variants.push(['BackpropInput', () => tf.conv2dTranspose(dy, f, [batch, h, w, ci], 1, 'same')]);
        } else {
          variants.push(['gemm', () => wrap(gemmBackpropFilter(b, x, dy))]);
          variants.push([
            'BackpropFilter',
            () =>
              tf
                .engine()
                .runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, ci, co] }) as tf.Tensor,
          ]);
        }
        for (const m of ms) {
          for (const btArg of bts) {
            const bt =
              btArg !== 'auto' ? Number(btArg) : dir === 'bwf' ? bpFilterTileBlock(m, ci, co) : tileBlock(m, dir === 'fwd' ? ci : co, dir === 'fwd' ? co : ci);
            const opts = { force: true, m, tileBlock: bt };
            const label = `F(${m},3) bt${bt}`;
            variants.push([
              label,
              dir === 'fwd'
                ? () => wrap(winogradConv3x3(b, x, f, bias, 'relu', {}, opts))
                : dir === 'bwd'
                  ? () => wrap(winogradConv3x3BackpropInput(b, dy, f, [batch, h, w, ci], {}, opts))
                  : () => wrap(winogradConv3x3BackpropFilter(b, x, dy, [3, 3, ci, co], {}, opts)),
            ]);
          }
        }
        const times = variants.map(() => [] as number[]);
        for (const [, v] of variants) timeOnce(v); // warm-up (compilation, heap growth)
        for (let r = 0; r < reps; r++) variants.forEach(([, v], i) => times[i].push(timeOnce(v)));
        variants.forEach(([label], i) => {
          const med = median(times[i]);
          console.log(
            `${dir.padEnd(4)} ${`${h}x${w}x${ci}->${co}`.padEnd(14)} ${String(batch).padStart(2)}  ${label.padEnd(15)} ` +
              `${med.toFixed(1).padStart(9)}  ${(flops / med / 1e6).toFixed(1).padStart(7)}   [${times[i].map((t) => t.toFixed(0)).join(' ')}]`,
          );
        });
      }
      const mm = ms[ms.length - 1];
      const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);
      console.log(
        `     scratch F(${mm},3) MiB: forward ${mib(winogradScratchBytes(batch, h, w, ci, co, { m: mm }))}, ` +
          `dX ${mib(winogradScratchBytes(batch, h, w, co, ci, { m: mm }))}, dW ${mib(winogradBpFilterScratchBytes(batch, h, w, ci, co, { m: mm }))}; ` +
          `load ${loadavg()[0].toFixed(2)}`,
      );
      tf.dispose([x, dy, f, bias]);
    }
  }
}

void main();

/**
 * A deliberately naive, independent statement of torchvision's ResNet forward pass in eval mode:
 * NCHW activations, OIHW kernels used as stored (no transposes), explicit symmetric zero padding,
 * max pooling padded with -inf, BatchNorm with eps 1e-5, Bottleneck stride on the 3×3 (v1.5).
 * Batch of one. Used to check the tfjs graph + weight mapping for layers the torchvision fixtures
 * do not cover (Bottleneck, ResNet-50).
 */
export interface T {
  c: number;
  h: number;
  w: number;
  d: Float32Array;
}
export type Weights = Map<string, { shape: number[]; data: Float32Array }>;

export function conv(x: T, wt: { shape: number[]; data: Float32Array }, stride: number, pad: number): T {
  const [o, i, kh, kw] = wt.shape;
  if (i !== x.c) throw new Error(`conv: ${i} input channels expected, got ${x.c}`);
  const oh = Math.floor((x.h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((x.w + 2 * pad - kw) / stride) + 1;
  const out = new Float32Array(o * oh * ow);
  for (let oc = 0; oc < o; oc++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let s = 0;
        for (let ic = 0; ic < i; ic++)
          for (let ky = 0; ky < kh; ky++) {
            const iy = y * stride - pad + ky;
            if (iy < 0 || iy >= x.h) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ix = xx * stride - pad + kx;
              if (ix < 0 || ix >= x.w) continue;
              s += x.d[(ic * x.h + iy) * x.w + ix] * wt.data[((oc * i + ic) * kh + ky) * kw + kx];
            }
          }
        out[(oc * oh + y) * ow + xx] = s;
      }
  return { c: o, h: oh, w: ow, d: out };
}

export function bn(x: T, W: Weights, p: string): T {
  const g = W.get(`${p}.weight`)!.data;
  const b = W.get(`${p}.bias`)!.data;
  const m = W.get(`${p}.running_mean`)!.data;
  const v = W.get(`${p}.running_var`)!.data;
  const out = new Float32Array(x.d.length);
  const hw = x.h * x.w;
  for (let c = 0; c < x.c; c++) {
    const k = g[c] / Math.sqrt(v[c] + 1e-5);
    for (let j = 0; j < hw; j++) out[c * hw + j] = (x.d[c * hw + j] - m[c]) * k + b[c];
  }
  return { ...x, d: out };
}

export const relu = (x: T): T => ({ ...x, d: x.d.map((v) => Math.max(v, 0)) });
const add = (a: T, b: T): T => ({ ...a, d: a.d.map((v, i) => v + b.d[i]) });

function maxpool(x: T): T {
  const oh = Math.floor((x.h + 2 - 3) / 2) + 1;
  const ow = Math.floor((x.w + 2 - 3) / 2) + 1;
  const out = new Float32Array(x.c * oh * ow);
  for (let c = 0; c < x.c; c++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let m = -Infinity;
        for (let ky = 0; ky < 3; ky++)
          for (let kx = 0; kx < 3; kx++) {
            const iy = y * 2 - 1 + ky;
            const ix = xx * 2 - 1 + kx;
            if (iy >= 0 && iy < x.h && ix >= 0 && ix < x.w) m = Math.max(m, x.d[(c * x.h + iy) * x.w + ix]);
          }
        out[(c * oh + y) * ow + xx] = m;
      }
  return { c: x.c, h: oh, w: ow, d: out };
}

/** torchvision ResNet with Bottleneck blocks (`layers` per stage), eval mode, → logits. */
export function resnetBottleneckForward(x: T, W: Weights, layers: number[]): Float32Array {
  const w = (n: string) => W.get(`${n}.weight`)!;
  let h = maxpool(relu(bn(conv(x, w('conv1'), 2, 3), W, 'bn1')));
  layers.forEach((n, s) => {
    for (let i = 0; i < n; i++) {
      const p = `layer${s + 1}.${i}`;
      const stride = s > 0 && i === 0 ? 2 : 1;
      let y = relu(bn(conv(h, w(`${p}.conv1`), 1, 0), W, `${p}.bn1`));
      y = relu(bn(conv(y, w(`${p}.conv2`), stride, 1), W, `${p}.bn2`));
      y = bn(conv(y, w(`${p}.conv3`), 1, 0), W, `${p}.bn3`);
      const idn = W.has(`${p}.downsample.0.weight`) ? bn(conv(h, w(`${p}.downsample.0`), stride, 0), W, `${p}.downsample.1`) : h;
      h = relu(add(y, idn));
    }
  });
  const hw = h.h * h.w;
  const pooled = new Float32Array(h.c);
  for (let c = 0; c < h.c; c++) {
    let s = 0;
    for (let j = 0; j < hw; j++) s += h.d[c * hw + j];
    pooled[c] = s / hw;
  }
  const fc = w('fc');
  const fb = W.get('fc.bias')!.data;
  const [classes, inF] = fc.shape;
  const out = new Float32Array(classes);
  for (let k = 0; k < classes; k++) {
    let s = fb[k];
    for (let j = 0; j < inF; j++) s += fc.data[k * inF + j] * pooled[j];
    out[k] = s;
  }
  return out;
}

/** Deterministic uniform numbers in [0,1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random torchvision-named ResNet-50-style weights: He-scaled kernels and BatchNorm statistics
 * drawn so activations neither explode nor vanish over 16 blocks.
 */
export function randomBottleneckWeights(layers: number[], classes: number, seed: number): Weights {
  const r = rng(seed);
  const W: Weights = new Map();
  const uni = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
  const convW = (name: string, o: number, i: number, k: number) => {
    const bound = Math.sqrt(6 / (i * k * k));
    W.set(`${name}.weight`, { shape: [o, i, k, k], data: uni(o * i * k * k, -bound, bound) });
  };
  const bnW = (name: string, c: number, gain = 1) => {
    W.set(`${name}.weight`, { shape: [c], data: uni(c, 0.5 * gain, 1.0 * gain) });
    W.set(`${name}.bias`, { shape: [c], data: uni(c, -0.2, 0.2) });
    W.set(`${name}.running_mean`, { shape: [c], data: uni(c, -0.3, 0.3) });
    W.set(`${name}.running_var`, { shape: [c], data: uni(c, 0.5, 2) });
  };
  convW('conv1', 64, 3, 7);
  bnW('bn1', 64);
  let inC = 64;
  layers.forEach((n, s) => {
    const planes = 64 * 2 ** s;
    for (let i = 0; i < n; i++) {
      const p = `layer${s + 1}.${i}`;
      convW(`${p}.conv1`, planes, inC, 1);
      bnW(`${p}.bn1`, planes);
      convW(`${p}.conv2`, planes, planes, 3);
      bnW(`${p}.bn2`, planes);
      convW(`${p}.conv3`, planes * 4, planes, 1);
      bnW(`${p}.bn3`, planes * 4, 0.3); // small residual branch keeps the sum bounded
      if (i === 0) {
        convW(`${p}.downsample.0`, planes * 4, inC, 1);
        bnW(`${p}.downsample.1`, planes * 4);
      }
      inC = planes * 4;
    }
  });
  const bound = 1 / Math.sqrt(inC);
  W.set('fc.weight', { shape: [classes, inC], data: uni(classes * inC, -bound, bound) });
  W.set('fc.bias', { shape: [classes], data: uni(classes, -bound, bound) });
  return W;
}

import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import {
  affineRange,
  dequantizeAffine,
  globMatch,
  planQuantization,
  quantizeAffine,
  quantizeWeights,
  roundHalfEven,
  toFloat16,
} from '../../src/export/quantize';

/** tfjs's own decoder, the one `tf.loadLayersModel` runs, applied to what we wrote. */
function decode(specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer): Record<string, Float32Array> {
  const t = tf.io.decodeWeights(data, specs);
  const out = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.dataSync() as Float32Array]));
  tf.dispose(Object.values(t));
  return out;
}

describe('weight quantization (tfjs-converter quantization.py semantics)', () => {
  it('rounds halves to even like numpy', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 0.4, 0.6].map(roundHalfEven)).to.deep.equal([0, 2, 2, 4, -0, -2, 0, 1]);
  });

  it('nudges the minimum so 0 is an exact code (hand-computed, uint8 over [-0.3, 1])', () => {
    // scale = 1.3/255; zero point (0.3/scale = 58.846) rounds to 59; min = -59·scale; max = 255·scale + min
    const r = affineRange(-0.3, 1, 'uint8');
    expect(r.scale).to.be.closeTo(1.3 / 255, 1e-15);
    expect(r.min).to.be.closeTo(-0.30078431372549, 1e-12);
    expect(r.max).to.be.closeTo(0.99921568627451, 1e-12);
    const q = quantizeAffine(new Float32Array([-0.3, 0, 1, 0.5]), 'uint8');
    // -0.3 sits 0.15 codes above the nudged min -> 0; 0 -> 59; 1 is clipped to max -> 255; 0.5 -> 157.08 -> 157
    expect([...q.codes]).to.deep.equal([0, 59, 255, 157]);
    const back = decode(
      [{ name: 'w', shape: [4], dtype: 'float32', quantization: { dtype: 'uint8', min: q.min, scale: q.scale } }],
      q.codes.buffer as ArrayBuffer,
    ).w;
    expect(back[1]).to.equal(0);
    expect(back[3]).to.be.closeTo(157 * (1.3 / 255) - 0.30078431372549, 1e-7);
    expect([...dequantizeAffine(q)]).to.deep.equal([...back]);
  });

  it('does not nudge a range that excludes 0, and encodes uint16 over it', () => {
    const r = affineRange(1, 3, 'uint16');
    expect(r).to.deep.equal({ scale: 2 / 65535, min: 1, max: 3 });
    const q = quantizeAffine(new Float32Array([1, 3, 2]), 'uint16');
    // 2 is 32767.5 codes above 1: the half goes to the even 32768
    expect([...q.codes]).to.deep.equal([0, 65535, 32768]);
  });

  it('stores a constant tensor as zero codes with min = the constant, so it decodes exactly', () => {
    for (const c of [0, 0.25, -7.5]) {
      const q = quantizeAffine(new Float32Array([c, c, c]), 'uint8');
      expect([...q.codes]).to.deep.equal([0, 0, 0]);
      expect(q).to.include({ min: c, scale: 1 });
      const back = decode(
        [{ name: 'b', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', min: q.min, scale: q.scale } }],
        q.codes.buffer as ArrayBuffer,
      ).b;
      expect([...back]).to.deep.equal([c, c, c]);
    }
  });

  it('writes IEEE half bit patterns that tfjs decodes', () => {
    // 1 = 0x3c00; 0.1 -> 0x2e66 (0.0999755859375); 65504 = largest half 0x7bff; 1e-8 is below half the smallest subnormal -> 0;
    // -2 = 0xc000; 1e6 overflows to +Inf 0x7c00
    const h = toFloat16(new Float32Array([1, 0.1, 65504, 1e-8, -2, 1e6]));
    expect([...h]).to.deep.equal([0x3c00, 0x2e66, 0x7bff, 0, 0xc000, 0x7c00]);
    const back = decode([{ name: 'h', shape: [6], dtype: 'float32', quantization: { dtype: 'float16' } }], h.buffer as ArrayBuffer).h;
    expect([...back]).to.deep.equal([1, 0.0999755859375, 65504, 0, -2, Number.POSITIVE_INFINITY]);
  });

  it('matches fnmatch patterns on whole weight names', () => {
    expect(globMatch('conv*', 'conv1/kernel')).to.equal(true);
    expect(globMatch('conv*', 'lt_conv1/kernel')).to.equal(false);
    expect(globMatch('*/bias', 'dense/bias')).to.equal(true);
    expect(globMatch('dense?/kernel', 'dense1/kernel')).to.equal(true);
    expect(globMatch('a.b', 'axb')).to.equal(false);
  });

  it('plans per-weight dtypes: patterns win, the rest get the mode, integer weights are left alone, conflicts are refused', () => {
    const specs: tf.io.WeightsManifestEntry[] = [
      { name: 'conv1/kernel', shape: [2], dtype: 'float32' },
      { name: 'dense/kernel', shape: [2], dtype: 'float32' },
      { name: 'steps', shape: [1], dtype: 'int32' },
    ];
    expect([...planQuantization(specs, 'uint8', { uint16: ['dense*'] })]).to.deep.equal([
      ['conv1/kernel', 'uint8'],
      ['dense/kernel', 'uint16'],
    ]);
    expect([...planQuantization(specs, 'none', { float16: ['conv*'] })]).to.deep.equal([['conv1/kernel', 'float16']]);
    expect(planQuantization(specs, 'none').size).to.equal(0);
    expect(() => planQuantization(specs, 'none', { uint8: ['*'], uint16: ['dense*'] })).to.throw(/dense\/kernel matches patterns of uint8 and uint16/);
  });

  it('rewrites a manifest so tfjs decodes every weight within half a step, leaving unplanned ones bit-exact', () => {
    const a = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 0.7);
    const b = new Float32Array([0.125, -3, 2.5]);
    const c = new Int32Array([7, -9]);
    const specs: tf.io.WeightsManifestEntry[] = [
      { name: 'a', shape: [5, 10], dtype: 'float32' },
      { name: 'b', shape: [3], dtype: 'float32' },
      { name: 'c', shape: [2], dtype: 'int32' },
    ];
    const data = new Uint8Array(4 * 55);
    data.set(new Uint8Array(a.buffer), 0);
    data.set(new Uint8Array(b.buffer), 200);
    data.set(new Uint8Array(c.buffer), 212);
    const q = quantizeWeights(specs, data.buffer, new Map([['a', 'uint8' as const]]));
    expect(q.data.byteLength).to.equal(50 + 12 + 8);
    const back = decode(q.specs, q.data);
    const step = (q.specs[0].quantization as { scale: number }).scale;
    for (let i = 0; i < 50; i++) expect(Math.abs(back.a[i] - a[i])).to.be.at.most(step / 2 + 1e-7);
    expect([...back.b]).to.deep.equal([...b]);
    expect([...back.c]).to.deep.equal([...c]);
  });
});

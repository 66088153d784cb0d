import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cutRect } from '../../src/data/eval-crop';
import { axisWeights, cropResizeHost, cropResizeReference } from '../../src/data/resize-crop';
import { Rng } from '../../src/data/rng';
import { augmentKernels } from '../../src/engine/wasm/augment';
import { withJs } from '../helpers/aug-kernels';

interface Case {
  height: number;
  width: number;
  size: number;
  pixels: number[];
  resized: number[];
}
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'resize-crop.json'), 'utf8')) as { cases: Case[] };

describe('RandomResizedCrop resize (src/data/resize-crop.ts, csrc crop_resize)', () => {
  it("filter weights: PIL's bilinear, by hand for a 2× enlargement and a 2× shrink", () => {
    // enlarging 2 → 4: centres at 0.25, 0.75, 1.25, 1.75 input pixels (pixel i's centre is i + ½); the two nearest
    // weighted ¾ and ¼, and at the edges only the edge pixel
    const up = axisWeights(2, 4);
    expect(Array.from(up.start)).to.deep.equal([0, 0, 0, 1]);
    const w = (a: typeof up, i: number) => Array.from(a.w.subarray(i * a.taps, i * a.taps + a.count[i]));
    expect(w(up, 0)).to.deep.equal([1]);
    expect(w(up, 1)).to.deep.equal([0.75, 0.25]);
    expect(w(up, 2)).to.deep.equal([0.25, 0.75]);
    expect(w(up, 3)).to.deep.equal([1]);
    // shrinking 8 → 4: support 2, triangle at distance/2, so output 1 (centre 3) reads inputs 1..4 as 1:3:3:1
    const down = axisWeights(8, 4);
    expect(down.start[1]).to.equal(1);
    expect(w(down, 1)).to.deep.equal([0.125, 0.375, 0.375, 0.125]);
  });

  it("within half a level of PyTorch's antialiased bilinear (PIL's filter) enlarging, shrinking and both", () => {
    for (const c of fixture.cases) {
      const copy = { pixels: Uint8Array.from(c.pixels), width: c.width, height: c.height };
      const out = withJs(() => cropResizeHost(copy, [0, 0, c.height, c.width], c.size));
      let max = 0;
      for (let i = 0; i < out.length; i++) max = Math.max(max, Math.abs(out[i] - c.resized[i]));
      expect(max, `${c.width}×${c.height} → ${c.size}`).to.be.at.most(0.5 + 1e-3);
    }
  });

  it('a window of the input size is copied exactly, from anywhere in the image', () => {
    const rng = new Rng(4);
    const px = Uint8Array.from({ length: 30 * 20 * 3 }, () => rng.int(256));
    const copy = { pixels: px, width: 30, height: 20 };
    for (const rect of [
      [3, 5, 10, 10],
      [0, 0, 10, 10],
      [10, 20, 10, 10],
    ] as Array<[number, number, number, number]>) {
      expect(Buffer.from(cropResizeHost(copy, rect, 10)).equals(Buffer.from(cutRect(px, 30, rect))), rect.join(',')).to.equal(true);
    }
  });

  it('kernel: bit for bit the reference on windows that enlarge, shrink, and do both, at odd sizes and edges', () => {
    const rng = new Rng(8);
    const copy = { pixels: Uint8Array.from({ length: 61 * 47 * 3 }, () => rng.int(256)), width: 61, height: 47 };
    const rects: Array<[number, number, number, number]> = [
      [0, 0, 47, 61],
      [5, 7, 11, 13],
      [46, 60, 1, 1],
      [0, 30, 47, 3],
      [20, 0, 2, 61],
      ...Array.from({ length: 20 }, () => {
        const h = 1 + rng.int(47);
        const w = 1 + rng.int(61);
        return [rng.int(48 - h), rng.int(62 - w), h, w] as [number, number, number, number];
      }),
    ];
    for (const size of [1, 7, 24, 33]) {
      for (const rect of rects) {
        const kernel = augmentKernels()!.cropResize(copy, rect, size, axisWeights(rect[3], size), axisWeights(rect[2], size));
        const reference = cropResizeReference(copy, rect, size, axisWeights(rect[3], size), axisWeights(rect[2], size));
        expect(Buffer.from(kernel).equals(Buffer.from(reference)), `${rect.join(',')} → ${size}`).to.equal(true);
      }
    }
  });

  it('a window outside the image is refused, naming it', () => {
    const copy = { pixels: new Uint8Array(10 * 10 * 3), width: 10, height: 10 };
    expect(() => cropResizeHost(copy, [5, 0, 6, 4], 8)).to.throw(/window 5,0,6,4 outside a 10×10 image/);
  });
});

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';

export function tmpDir(prefix = 'lt-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A solid-colour image with a little deterministic texture, in the format the extension names. */
export async function writeImage(file: string, opts: { w?: number; h?: number; rgb?: [number, number, number]; channels?: 1 | 3 | 4 } = {}): Promise<void> {
  const w = opts.w ?? 40;
  const h = opts.h ?? 30;
  const ch = opts.channels ?? 3;
  const [r, g, b] = opts.rgb ?? [200, 30, 30];
  const px = Buffer.alloc(w * h * ch);
  for (let i = 0; i < w * h; i++) {
    const t = (i * 7) % 13;
    const vals = ch === 1 ? [r] : ch === 3 ? [r, g, b] : [r, g, b, 255];
    vals.forEach((v, c) => (px[i * ch + c] = Math.min(255, v + t)));
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp(px, { raw: { width: w, height: h, channels: ch } }).toFile(file);
}

/** A class folder tree: {classA: n, classB: m} with distinct colours per class. */
export async function writeClassFolder(root: string, counts: Record<string, number>, ext = '.png'): Promise<void> {
  const colours: Array<[number, number, number]> = [
    [220, 20, 20],
    [20, 200, 40],
    [30, 40, 210],
    [200, 200, 20],
    [20, 200, 200],
  ];
  let k = 0;
  for (const [cls, n] of Object.entries(counts)) {
    for (let i = 0; i < n; i++) await writeImage(path.join(root, cls, `img_${i}${ext}`), { rgb: colours[k % colours.length] });
    k++;
  }
}

/** A lossless PNG of seeded noise, so a crop one pixel off cannot match by accident. */
export async function noisePng(file: string, w: number, h: number, seed = 7): Promise<Uint8Array> {
  const px = new Uint8Array(w * h * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    px[i] = s >> 23;
  }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(file);
  return px;
}

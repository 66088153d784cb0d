import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as tf from '@tensorflow/tfjs';

/**
 * Activations of the frozen prefix, computed once per (image, augmentation) and reused every
 * later epoch. Valid because frozen stages run BN on stored statistics and the only augmentation
 * (a flip) is part of the key. Kept in memory up to `memoryBytes`, spilled to files past it.
 */
export class FeatureCache {
  private mem = new Map<string, Float32Array>();
  private onDisk = new Set<string>();
  private memBytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly shape: number[],
    private readonly memoryBytes: number,
    private readonly spillDir: string | null,
  ) {}

  private file(key: string): string {
    return path.join(this.spillDir!, `${crypto.createHash('sha1').update(key).digest('hex')}.f32`);
  }

  has(key: string): boolean {
    return this.mem.has(key) || this.onDisk.has(key);
  }

  get(key: string): Float32Array {
    const m = this.mem.get(key);
    if (m) return m;
    const buf = fs.readFileSync(this.file(key));
    return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  }

  put(key: string, row: Float32Array): void {
    if (this.memBytes + row.byteLength <= this.memoryBytes) {
      this.mem.set(key, row);
      this.memBytes += row.byteLength;
    } else if (this.spillDir) {
      fs.mkdirSync(this.spillDir, { recursive: true });
      fs.writeFileSync(this.file(key), Buffer.from(row.buffer, row.byteOffset, row.byteLength));
      this.onDisk.add(key);
    }
  }

  /**
   * Prefix outputs for a batch: cached rows are reused and only the missing rows go through
   * `compute(rows)` (one forward pass over them), so a partly seen batch (a new flip of a known
   * image) costs only its new rows.
   */
  batch(keys: string[], compute: (rows: number[]) => tf.Tensor): tf.Tensor {
    const rowSize = this.shape.reduce((a, b) => a * b, 1);
    const missing = keys.map((k, i) => (this.has(k) ? -1 : i)).filter((i) => i >= 0);
    this.hits += keys.length - missing.length;
    this.misses += missing.length;
    const fresh = new Map<number, Float32Array>();
    if (missing.length) {
      const t = compute(missing);
      const data = t.dataSync() as Float32Array;
      t.dispose();
      missing.forEach((row, j) => {
        const values = data.slice(j * rowSize, (j + 1) * rowSize);
        fresh.set(row, values);
        this.put(keys[row], values);
      });
    }
    const out = new Float32Array(keys.length * rowSize);
    keys.forEach((k, i) => out.set(fresh.get(i) ?? this.get(k), i * rowSize));
    return tf.tensor(out, [keys.length, ...this.shape]);
  }

  get bytesInMemory(): number {
    return this.memBytes;
  }
}

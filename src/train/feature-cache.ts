import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as zlib from 'node:zlib';
import * as tf from '@tensorflow/tfjs';

/**
 * Activations of the frozen prefix, computed once per (image, augmentation) and reused every
 * later epoch. Valid because frozen stages run BN on stored statistics and the only augmentation
 * (a flip) is part of the key. Kept in memory up to `memoryBytes`, spilled to files past it.
 * Every spilled file's CRC-32 is kept in memory and checked on each read: a file damaged on disk (or
 * truncated by a full disk) is computed again, said in one line, instead of feeding garbage activations.
 */
export class FeatureCache {
  private mem = new Map<string, Float32Array>();
  /** Spilled entries: key → CRC-32 of the file's bytes. */
  private onDisk = new Map<string, number>();
  private memBytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    private readonly shape: number[],
    private readonly memoryBytes: number,
    private readonly spillDir: string | null,
    private readonly warn: (line: string) => void = (l) => console.warn(l),
  ) {}
  /** Spilled entries found damaged and computed again. */
  rebuilt = 0;

  private file(key: string): string {
    return path.join(this.spillDir!, `${crypto.createHash('sha1').update(key).digest('hex')}.f32`);
  }

  has(key: string): boolean {
    return this.mem.has(key) || this.onDisk.has(key);
  }

  get(key: string): Float32Array {
    const row = this.read(key);
    if (!row) throw new Error(`feature cache: no intact entry for ${key}`);
    return row;
  }

  /** The entry, or null when it is absent or its spilled file no longer matches its checksum (then it is dropped). */
  private read(key: string): Float32Array | null {
    const m = this.mem.get(key);
    if (m) return m;
    const crc = this.onDisk.get(key);
    if (crc === undefined) return null;
    const file = this.file(key);
    let buf: Buffer;
    try {
      buf = fs.readFileSync(file);
    } catch (e) {
      return this.drop(key, file, `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const rowBytes = this.shape.reduce((a, b) => a * b, 1) * 4;
    if (buf.byteLength !== rowBytes) return this.drop(key, file, `${buf.byteLength} bytes, expected ${rowBytes}`);
    if (zlib.crc32(buf) !== crc) return this.drop(key, file, 'checksum mismatch');
    // copy: a Buffer from the pool may start at an offset that is not a multiple of 4
    return new Float32Array(new Uint8Array(buf).buffer);
  }

  private drop(key: string, file: string, why: string): null {
    this.onDisk.delete(key);
    this.rebuilt++;
    this.warn(`warning: feature cache ${file}: ${why}; computing it again`);
    return null;
  }

  put(key: string, row: Float32Array): void {
    // the balanced sampler can put one image twice in a batch: store (and count) it once
    if (this.mem.has(key)) return;
    if (this.memBytes + row.byteLength <= this.memoryBytes) {
      this.mem.set(key, row);
      this.memBytes += row.byteLength;
    } else if (this.spillDir) {
      fs.mkdirSync(this.spillDir, { recursive: true });
      const bytes = Buffer.from(row.buffer, row.byteOffset, row.byteLength);
      fs.writeFileSync(this.file(key), bytes);
      this.onDisk.set(key, zlib.crc32(bytes));
    }
  }

  /**
   * Prefix outputs for a batch: cached rows are reused and only the missing rows go through
   * `compute(rows)` (one forward pass over them), so a partly seen batch (a new flip of a known
   * image) costs only its new rows.
   */
  batch(keys: string[], compute: (rows: number[]) => tf.Tensor): tf.Tensor {
    const rowSize = this.shape.reduce((a, b) => a * b, 1);
    // read first: a damaged spilled row is dropped here and computed with the missing ones
    const cached = keys.map((k) => this.read(k));
    const missing = cached.map((c, i) => (c ? -1 : i)).filter((i) => i >= 0);
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
    keys.forEach((_, i) => out.set(fresh.get(i) ?? cached[i]!, i * rowSize));
    return tf.tensor(out, [keys.length, ...this.shape]);
  }

  get bytesInMemory(): number {
    return this.memBytes;
  }
}

import type { DataSource, Example } from '../../src/data/source';
import type { Container } from 'inversify';
import { dataContainer } from '../helpers/memory-source';

/**
 * An in-memory DataSource: class k is a flat colour with a little per-image texture, so a network can
 * learn it in a few steps. `noise: 0` makes every image of a class identical (a deterministic loss).
 */
export class MemorySource implements DataSource {
  readonly classes: string[];
  readonly train: Example[];
  readonly val: Example[];
  readonly skipped: DataSource['skipped'] = [];
  readonly warnings: string[] = [];
  decoded = 0;
  constructor(opts: { classes?: number; perClass?: number; valPerClass?: number; noise?: number } = {}) {
    const k = opts.classes ?? 3;
    const n = opts.perClass ?? 6;
    const nv = opts.valPerClass ?? 2;
    this.classes = Array.from({ length: k }, (_, i) => `c${i}`);
    this.train = [];
    this.val = [];
    for (let c = 0; c < k; c++) {
      for (let i = 0; i < n; i++) this.train.push({ key: `c${c}/t${i}`, label: c });
      for (let i = 0; i < nv; i++) this.val.push({ key: `c${c}/v${i}`, label: c });
    }
    this.noise = opts.noise ?? 40;
  }
  private readonly noise: number;
  async pixels(e: Example, size: number): Promise<Uint8Array> {
    this.decoded++;
    const base = [
      [230, 30, 30],
      [30, 210, 50],
      [40, 40, 220],
      [220, 220, 30],
      [30, 220, 220],
    ][e.label % 5];
    const seed = [...e.key].reduce((a, ch) => (a * 31 + ch.charCodeAt(0)) >>> 0, 7);
    const px = new Uint8Array(size * size * 3);
    // a colour AND a spatial pattern per class: BatchNorm on batch statistics normalises a batch of one
    // class's flat colour away, stripes survive it
    const band = Math.max(1, Math.floor(size / 8));
    const pattern = (r: number, c: number) => {
      const k = e.label % 4;
      const on =
        k === 0
          ? Math.floor(r / band) % 2
          : k === 1
            ? Math.floor(c / band) % 2
            : k === 2
              ? (Math.floor(r / band) + Math.floor(c / band)) % 2
              : Math.floor((r + c) / band) % 2;
      return on ? 60 : -60;
    };
    for (let i = 0; i < size * size; i++) {
      const t = this.noise ? (((i * 2654435761) ^ seed) >>> 0) % this.noise : 0;
      const d = pattern(Math.floor(i / size), i % size);
      for (let c = 0; c < 3; c++) px[i * 3 + c] = Math.max(0, Math.min(255, base[c] + d + t - this.noise / 2));
    }
    return px;
  }
}

/** Run options whose container has this source as the data stage. */
export function withData(src: DataSource): { container: Container; log: (s: string) => void } {
  return { container: dataContainer(() => src), log: () => {} };
}

/** A small, fast job on the shipped MobileNet (32 px, cpu-free wasm default backend). */
export function tinyJob(out: string, extra: Record<string, any> = {}): Record<string, unknown> {
  return {
    out,
    model: { size: 32, ...(extra.model ?? {}) },
    train: { batch: 6, epochs: 1, ...(extra.train ?? {}) },
    ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'model' && k !== 'train')),
  };
}

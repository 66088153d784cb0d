import * as fs from 'node:fs';
import { UserError } from '../errors';
import { decodeImage } from './decode';
import { scanFolder } from './scan';
import { stratifiedSplit } from './split';
import { toExamples, type DataSource, type Example } from './source';

export interface ImageFolderOptions {
  root: string;
  valFraction: number;
  seed: number;
  maxPixels?: number;
  /** Decoded images kept in memory, in bytes; beyond it images are decoded again each epoch. */
  cacheBytes?: number;
}

/**
 * An image folder as a DataSource. Decoded pixels are cached up to a byte budget, so a small set
 * is decoded once while a large one streams from disk with bounded memory.
 */
export class ImageFolderSource implements DataSource {
  readonly classes: string[];
  readonly train: Example[];
  readonly val: Example[];
  readonly test?: Example[];
  readonly skipped: Array<{ file: string; reason: string }> = [];
  readonly warnings: string[];
  private cache = new Map<string, Uint8Array>();
  private readonly sizes: Map<string, number>;
  private cachedBytes = 0;

  constructor(private readonly opts: ImageFolderOptions) {
    const layout = scanFolder(opts.root);
    this.classes = layout.classes;
    this.warnings = layout.warnings;
    this.sizes = layout.sizes;
    // files found at scan time but unusable (symlink loops, FIFOs): counted with the decode failures
    this.skipped.push(...layout.skipped);
    if (layout.presplit) {
      this.train = toExamples(layout.presplit.train);
      this.val = toExamples(layout.presplit.val);
      this.test = layout.presplit.test && toExamples(layout.presplit.test);
    } else {
      const { train, val } = stratifiedSplit(layout.all!, opts.valFraction, opts.seed);
      this.train = toExamples(train);
      this.val = toExamples(val);
    }
  }

  async pixels(example: Example, size: number): Promise<Uint8Array> {
    const key = `${size}:${example.key}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    this.checkUnchanged(example.key);
    const px = await decodeImage(example.key, { size, maxPixels: this.opts.maxPixels });
    if (this.cachedBytes + px.length <= (this.opts.cacheBytes ?? 512 * 1024 * 1024)) {
      this.cache.set(key, px);
      this.cachedBytes += px.length;
    }
    return px;
  }

  /**
   * A file that was listed by the scan and is now gone or another size means the data folder changed under the
   * run: that stops it, naming the file, rather than being skipped like a corrupt image, so a run never goes on
   * quietly with data other than it started with.
   */
  private checkUnchanged(file: string): void {
    const before = this.sizes.get(file);
    if (before === undefined) return;
    let now: number;
    try {
      now = fs.statSync(file).size;
    } catch (e) {
      throw new DataChangedError(
        `${file}: vanished since the data folder was scanned (${(e as NodeJS.ErrnoException).code ?? 'unreadable'}); the data changed during the run`,
      );
    }
    if (now !== before)
      throw new DataChangedError(`${file}: changed since the data folder was scanned (${before} → ${now} bytes); the data changed during the run`);
  }
}

/** The data folder changed after the scan: a UserError (one line, exit 2), not a skippable DataError. */
export class DataChangedError extends UserError {}

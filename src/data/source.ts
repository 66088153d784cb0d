import type { DecodedImage } from './decode';
import type { LabelledFile } from './scan';

/** One example: `key` identifies it for caches and error messages (a file path for image folders). */
export interface Example {
  key: string;
  label: number;
}

/**
 * Where examples come from. The image-folder source is the default binding; tests bind an
 * in-memory source and the rest of the pipeline runs unchanged.
 */
export interface DataSource {
  readonly classes: string[];
  readonly train: Example[];
  readonly val: Example[];
  readonly test?: Example[];
  /** Files that were found but could not be used, with the reason; grows while decoding. */
  readonly skipped: Array<{ file: string; reason: string }>;
  readonly warnings: string[];
  /** 8-bit RGB HWC pixels at `size`×`size`; throws DataError when the example cannot be decoded. */
  pixels(example: Example, size: number): Promise<Uint8Array>;
  /**
   * The training copy random crops are cut from (short side data.presize, aspect kept); throws DataError like
   * `pixels`. A source without it gives its crops from the size×size `pixels`.
   */
  presized?(example: Example, size: number): Promise<DecodedImage>;
  /**
   * The size×size input an evaluation pass sees (data.eval's crop); throws DataError like `pixels`. A source
   * without it evaluates on `pixels`.
   */
  evalPixels?(example: Example, size: number): Promise<Uint8Array>;
}

export function toExamples(files: LabelledFile[]): Example[] {
  return files.map((f) => ({ key: f.file, label: f.label }));
}

/**
 * Records an example that failed to decode and warns once for it. The start-of-run class probe and the batch loop
 * both call this, so a bad file gets the same single warning whichever of them meets it first.
 */
export function recordSkipped(source: DataSource, file: string, reason: string): void {
  source.skipped.push({ file, reason });
  process.emitWarning(`skipping ${reason}`, { code: 'LAYERTUNE_SKIPPED_IMAGE' });
}

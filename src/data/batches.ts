import { DataError } from '../errors';
import type { BatchAugmenter, BatchDraw, ImageDraw } from './augment';
import { balancedOrder } from './balance';
import { viewKey, viewOfEpoch, viewRng } from './cached-views';
import { type DecodedImage, flipHorizontal } from './decode';
import { DecodeAhead } from './decode-ahead';
import { cropPresized } from './presize';
import type { Rng } from './rng';
import { recordSkipped, type DataSource, type Example } from './source';

export interface RawBatch {
  /** n·size·size·3 bytes, HWC per image. */
  pixels: Uint8Array;
  labels: number[];
  /** Stable identity of each row (example key + augmentation), for the frozen-prefix cache. */
  keys: string[];
  n: number;
  /** Position of this batch in the pass, counting batches that yielded nothing (all undecodable). */
  index: number;
  /** The augmentation draws of each row and of the batch, when an augmenter is configured. */
  draws?: { rows: ImageDraw[]; batch: BatchDraw };
  /** With cached views: the view every row of this batch is (its draws are that view's, its keys name it). */
  view?: number;
}

export interface BatchOptions {
  size: number;
  batch: number;
  shuffle: boolean;
  flip: boolean;
  /** Left-right flip probability; absent: 0.5 when `flip`, else 0. */
  hflip?: number;
  /** Draws crops, colour and mixing for each image and batch; the flip is then folded into its crop. */
  augment?: BatchAugmenter | null;
  /** data.balance 'sampler': each pass's order drawn with equal probability per class, with replacement. */
  balanced?: boolean;
  /**
   * Leading batches to pass over: their RNG draws are made, nothing is decoded or yielded. Resuming mid-epoch
   * from (RNG state at the epoch's start, index of the last batch done + 1) gives exactly the rest of the epoch.
   */
  skip?: number;
  /**
   * An evaluation pass: images come through the source's evaluation crop (`evalPixels`). Default: a pass without
   * an RNG, which is how validation and the export's accuracy check call this.
   */
  evaluation?: boolean;
  /**
   * data.augment.cachedViews under a frozen prefix: each image's flip and augmentation draws are those of view
   * `epoch mod count`, drawn from that view's own RNG (src/data/cached-views.ts) instead of the run's, which then
   * only orders the data. Needs `augment`.
   */
  views?: { count: number; epoch: number; seed: number };
  /**
   * Batches whose images are decoded ahead of the one being consumed (default 1; 0: each batch's images are decoded
   * when it is asked for). Changes when pixels are ready, never which batches, draws or pixels come out.
   */
  decodeAhead?: number;
}

/**
 * Yields raw batches one at a time, decoding only the images of the current batch and the next
 * `decodeAhead` (plus what the source caches), so memory does not grow with the data set, and the next
 * batch's decoding overlaps the consumer's work on this one. Undecodable files are recorded on the
 * source once and not decoded again. Which examples share a batch, and the RNG draws, never depend
 * on which files are already known to be bad: a run resumed in a fresh process (which has to
 * rediscover them) sees the same batches and the same flips as the uninterrupted run.
 */
export async function* rawBatches(source: DataSource, examples: Example[], opts: BatchOptions, rng: Rng | null): AsyncGenerator<RawBatch> {
  const order = opts.shuffle && rng ? (opts.balanced ? balancedOrder(rng, examples) : rng.shuffle(examples)) : examples;
  const bad = new Set(source.skipped.map((s) => s.file));
  const per = opts.size * opts.size * 3;
  const augment = rng ? (opts.augment ?? null) : null;
  const flipP = opts.hflip ?? (opts.flip ? 0.5 : 0);
  const evaluation = opts.evaluation ?? rng === null;
  const decode = evaluation && source.evalPixels ? source.evalPixels.bind(source) : source.pixels.bind(source);
  // RandomResizedCrop from presized copies: the crop is drawn in each copy's own dimensions, so the batch's copies
  // are decoded (or read from the cache) before its draws, even for batches a resume passes over
  const presizing = augment?.cropsPresized === true && source.presized !== undefined;
  const views = augment ? opts.views : undefined;
  const view = views ? viewOfEpoch(views.epoch, views.count) : undefined;
  /** One example's flip and augmentation draws: from its view's RNG with cached views, else the run's, in data order. */
  const drawFor = (ex: Example, image?: { width: number; height: number }): { flip: boolean; draw: ImageDraw } => {
    const r = views ? viewRng(views.seed, ex.key, view as number) : (rng as Rng);
    const flip = flipP > 0 && r.next() < flipP;
    return { flip, draw: augment!.drawImage(r, flip, image) };
  };
  /** Decodes started early: of the presized copies (whose dimensions the draws need) or of the size×size squares. */
  const known = (ex: Example) => bad.has(ex.key);
  const copiesAhead = presizing ? new DecodeAhead(order, (ex) => source.presized!(ex, opts.size), known) : null;
  const squaresAhead = new DecodeAhead(order, (ex) => decode(ex, opts.size), known);
  const aheadImages = Math.max(0, opts.decodeAhead ?? 1) * opts.batch;
  // batch j holds positions [j·batch, (j+1)·batch) of the order; a resume's passed-over batches decode nothing
  const firstDecoded = (opts.skip ?? 0) * opts.batch;
  let pending: Array<{ ex: Example; pos: number; flip: boolean; draw?: ImageDraw; copy?: DecodedImage | null }> = [];
  let index = 0;
  const skipBad = (ex: Example, e: unknown): null => {
    if (!(e instanceof DataError)) throw e;
    recordSkipped(source, ex.key, e.message);
    bad.add(ex.key);
    return null;
  };
  /** Fetches the batch's presized copies, then makes each example's flip and crop draws in data order. */
  const drawPresized = async (exs: Array<{ ex: Example; pos: number }>): Promise<typeof pending> => {
    const fetching = exs.map(async ({ ex, pos }) => {
      if (bad.has(ex.key)) return null;
      try {
        return await (copiesAhead as DecodeAhead<DecodedImage>).take(pos);
      } catch (e) {
        return skipBad(ex, e);
      }
    });
    // the draws of every batch need its copies, so they are fetched ahead even for batches a resume passes over
    const end = exs.length ? exs[exs.length - 1].pos + 1 : 0;
    copiesAhead?.start(end, end + aheadImages);
    const copies = await Promise.all(fetching);
    return exs.map(({ ex, pos }, i) => {
      // an undecodable file still takes its draws (on a nominal square) so the stream never depends on failures
      const c = copies[i];
      return { ex, pos, ...drawFor(ex, c ?? { width: opts.size, height: opts.size }), copy: c };
    });
  };
  const emit = async (items: typeof pending): Promise<RawBatch | null> => {
    // the batch draw comes before the skip test, so a resumed run replays it for the batches it passes over
    const batchDraw = augment ? augment.drawBatch(rng as Rng) : null;
    if (index++ < (opts.skip ?? 0)) return null;
    const decoding = items.map(async ({ ex, pos, flip, draw, copy }) => {
      if (bad.has(ex.key) || copy === null) return null;
      try {
        if (copy && draw?.source) return { ex, flip, draw, px: cropPresized(copy, draw.source, opts.size) };
        const px = await squaresAhead.take(pos);
        return { ex, flip, draw, px: flip && !draw ? flipHorizontal(px, opts.size) : px };
      } catch (e) {
        return skipBad(ex, e);
      }
    });
    // after this batch's decodes, so sharp's queue serves them first
    if (!presizing) {
      const end = items[items.length - 1].pos + 1;
      squaresAhead.start(Math.max(end, firstDecoded), end + aheadImages);
    }
    const decoded = await Promise.all(decoding);
    const ok = decoded.filter((d): d is NonNullable<typeof d> => d !== null);
    if (ok.length === 0) return null;
    const pixels = new Uint8Array(ok.length * per);
    ok.forEach((d, i) => pixels.set(d.px, i * per));
    return {
      pixels,
      labels: ok.map((d) => d.ex.label),
      keys: ok.map((d) => (view === undefined ? `${d.ex.key}${d.flip ? '#flip' : ''}` : viewKey(d.ex.key, view))),
      n: ok.length,
      index: index - 1,
      ...(batchDraw ? { draws: { rows: ok.map((d) => d.draw as ImageDraw), batch: batchDraw } } : {}),
      ...(view === undefined ? {} : { view }),
    };
  };
  let waiting: Array<{ ex: Example; pos: number }> = [];
  for (let pos = 0; pos < order.length; pos++) {
    const ex = order[pos];
    if (presizing) {
      waiting.push({ ex, pos });
      if (waiting.length < opts.batch) continue;
      pending = await drawPresized(waiting);
      waiting = [];
    } else {
      // the flip draw happens for every example so the RNG stream does not depend on decode failures
      if (augment) pending.push({ ex, pos, ...drawFor(ex) });
      else pending.push({ ex, pos, flip: flipP > 0 && rng !== null && rng.next() < flipP });
    }
    if (pending.length === opts.batch) {
      const b = await emit(pending);
      pending = [];
      if (b) yield b;
    }
  }
  if (waiting.length) pending = await drawPresized(waiting);
  if (pending.length) {
    const b = await emit(pending);
    if (b) yield b;
  }
}

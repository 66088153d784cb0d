/**
 * Shared plumbing for the tuning tools: a view of a DataSource without validation images, a model source that
 * hands out the same pretrained weights to every trial, and disposal of a prepared network. Their Trainer comes from the container
 * (`p.stages.trainer`), the same builder runJob uses; they never re-implement the loop.
 */
import type { Prepared } from '../job';
import type { Network } from '../models/network';
import type { DataSource, Example } from '../data/source';
import type { ModelRequest, ModelSource } from '../models/source';
import type { Backbone } from '../models/types';
import { flatLayers } from '../optim/named';
import { modelWeights, type WeightSnapshot } from '../schedules/weights';

/** The same source with a different train/val view; decoding (and its cache) stays with the base source. */
export class SplitDataView implements DataSource {
  constructor(
    private readonly base: DataSource,
    readonly train: Example[],
    readonly val: Example[],
  ) {}
  get classes(): string[] {
    return this.base.classes;
  }
  get skipped(): DataSource['skipped'] {
    return this.base.skipped;
  }
  get warnings(): string[] {
    return this.base.warnings;
  }
  pixels(example: Example, size: number): Promise<Uint8Array> {
    return this.base.pixels(example, size);
  }
  // bound only when the base has them, so a view changes nothing about which decode path a pass takes
  get presized(): DataSource['presized'] {
    return this.base.presized?.bind(this.base);
  }
  get evalPixels(): DataSource['evalPixels'] {
    return this.base.evalPixels?.bind(this.base);
  }
}

/**
 * Frees a prepared network's weights. Layer reference counts cannot be trusted here (every symbolic
 * re-application, e.g. the split at a cached stage, raises them), so the variables are released directly.
 */
export function disposeNetwork(net: Network): void {
  const seen = new Set<unknown>();
  for (const m of [net.train, net.infer, net.backbone.model]) {
    for (const layer of flatLayers(m)) {
      for (const w of layer.weights) {
        if (seen.has(w)) continue;
        seen.add(w);
        w.dispose();
      }
    }
  }
}

/** Frees the head's weights only (the layers of the training model that are not in the backbone). */
export function disposeHead(net: Network): void {
  const backbone = new Set(flatLayers(net.backbone.model));
  for (const layer of flatLayers(net.train)) {
    if (backbone.has(layer)) continue;
    for (const w of layer.weights) w.dispose();
  }
}

/**
 * A ModelSource that loads each backbone once and hands it out again with its pretrained weights (BatchNorm
 * statistics included) written back: trials of a search start from the same weights without reloading, and
 * without the loader's per-load allocations, so tensors stay flat over any number of trials. Call
 * `disposeNetwork`-style cleanup through `dispose()` when the search ends; free each trial's head with
 * `disposeHead`.
 */
export class CachedModelSource implements ModelSource {
  private readonly cache = new Map<string, { backbone: Backbone; weights: WeightSnapshot }>();
  constructor(private readonly base: ModelSource) {}
  async load(req: ModelRequest): Promise<Backbone> {
    const key = JSON.stringify([req.source, req.size ?? null]);
    const hit = this.cache.get(key);
    const store = (b: Backbone) => modelWeights(b.model);
    if (hit) {
      store(hit.backbone).write(hit.weights);
      return hit.backbone;
    }
    const backbone = await this.base.load(req);
    this.cache.set(key, { backbone, weights: store(backbone).read() });
    return backbone;
  }
  dispose(): void {
    for (const { backbone } of this.cache.values()) {
      for (const layer of flatLayers(backbone.model)) for (const w of layer.weights) w.dispose();
    }
    this.cache.clear();
  }
}

/** The top layer group's configured rate (before bias/norm multipliers): the rate a sweep or a search sets. */
export function topGroupLr(p: Prepared): number {
  const lrs = p.plan.layerGroups.map((g) => g.lr).filter((v) => v > 0);
  return lrs.length ? Math.max(...lrs) : 0;
}

import type { Backbone } from './types';

export interface ModelRequest {
  /** Path or URI of the pretrained model. */
  source: string;
  /** Requested square input size; undefined keeps the model's own. */
  size?: number;
}

/** Where a pretrained backbone comes from. The default (models/registry.ts) picks a loader by the URI. */
export interface ModelSource {
  load(req: ModelRequest): Promise<Backbone>;
}

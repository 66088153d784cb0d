import type { Backbone } from './types';
import { loadLayersFolder } from './tfjs-layers';

export interface ModelRequest {
  /** Path or URI of the pretrained model. */
  source: string;
  /** Requested square input size; undefined keeps the model's own. */
  size?: number;
}

/** Where a pretrained backbone comes from. The default reads tfjs LayersModel folders. */
export interface ModelSource {
  load(req: ModelRequest): Promise<Backbone>;
}

export class LayersFolderSource implements ModelSource {
  load(req: ModelRequest): Promise<Backbone> {
    return loadLayersFolder(req.source, { inputSize: req.size });
  }
}

import { buildArch } from './arch';
import { loadKerasH5 } from './keras-h5';
import type { ModelRequest, ModelSource } from './source';
import { loadLayersFolder } from './tfjs-layers';
import { classifySource } from './classify-source';
import { loadGraphBackbone } from './graph-source';
import { fetchToCache, isRemote, type RemoteOptions } from './remote';
import { backboneFromBuilt, type LoadedBackbone, loadTorchSafetensors } from './torch-source';

export interface LoadBackboneOptions {
  /** Force an architecture (safetensors / .h5), or name it for `arch:` URIs. */
  arch?: string;
  /** Square input side; default the architecture's own (224). */
  inputSize?: number;
  /** Cache folder, offline and refresh behaviour for http(s):// sources (see remote.ts). */
  remote?: RemoteOptions;
}

/**
 * One entry point for every pretrained source: returns a Backbone (a functional LayersModel with
 * declared stages). http(s) URLs are downloaded into the user cache first and keep the URL as their
 * `source`. A GraphModel becomes a head-only backbone (`headOnly` set; see graph-source.ts).
 */
export async function loadBackbone(uri: string, opts: LoadBackboneOptions = {}): Promise<LoadedBackbone> {
  if (isRemote(uri)) {
    const local = await fetchToCache(uri, opts.remote);
    const b = await loadBackbone(local, { ...opts, remote: undefined });
    return { ...b, source: uri };
  }
  const { kind, location } = classifySource(uri);
  switch (kind) {
    case 'scratch': {
      const built = buildArch(location, { inputSize: opts.inputSize });
      return backboneFromBuilt(built, uri, 0);
    }
    case 'safetensors':
      return loadTorchSafetensors(location, { arch: opts.arch, inputSize: opts.inputSize });
    case 'keras-h5':
      return loadKerasH5(location, { arch: opts.arch, inputSize: opts.inputSize });
    case 'tfjs-graph':
      return loadGraphBackbone(location, { inputSize: opts.inputSize });
    case 'tfjs-layers':
      return { ...(await loadLayersFolder(location, { inputSize: opts.inputSize })) };
  }
}

/** The registry as the trainer's ModelSource (bind this in the container to accept every format). */
export class RegistryModelSource implements ModelSource {
  load(req: ModelRequest): Promise<LoadedBackbone> {
    return loadBackbone(req.source, { inputSize: req.size });
  }
}

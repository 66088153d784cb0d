import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError } from '../errors';
import { resolveDefaultModel } from '../package-root';
import { buildArch } from './arch';
import { loadKerasH5 } from './keras-h5';
import type { ModelRequest, ModelSource } from './source';
import { resolveModelJson, loadLayersFolder } from './tfjs-layers';
import { loadGraphBackbone } from './graph-source';
import { fetchToCache, isRemote, type RemoteOptions } from './remote';
import { backboneFromBuilt, LoadedBackbone, loadTorchSafetensors } from './torch-source';

export interface LoadBackboneOptions {
  /** Force an architecture (safetensors / .h5), or name it for `arch:` URIs. */
  arch?: string;
  /** Square input side; default the architecture's own (224). */
  inputSize?: number;
  /** Cache folder, offline and refresh behaviour for http(s):// sources (see remote.ts). */
  remote?: RemoteOptions;
}

/** How a URI names its source; exported so `inspect` and error messages can say what was understood. */
export type SourceKind = 'scratch' | 'safetensors' | 'keras-h5' | 'tfjs-layers' | 'tfjs-graph';

const H5_EXTENSIONS = ['.h5', '.hdf5', '.keras'];

/**
 * Decides which loader a URI goes to, without loading anything:
 *  - `arch:NAME`: the architecture in code, randomly initialised (training from scratch);
 *  - `*.safetensors`: PyTorch weights in torchvision or timm naming;
 *  - `*.h5` / `*.hdf5`: Keras application weights;
 *  - a folder or `model.json`: a tfjs LayersModel, or a GraphModel (inference only).
 * `file://` prefixes are accepted; http(s) URLs must be fetched into the cache first (loadBackbone does).
 */
export function classifySource(uri: string): { kind: SourceKind; location: string } {
  if (uri.startsWith('arch:')) return { kind: 'scratch', location: uri.slice(5) };
  if (/^https?:\/\//i.test(uri)) {
    throw new ModelFormatError(uri, 'remote URLs are classified after download: load it with loadBackbone, which fetches it into the cache (fetchToCache)');
  }
  const location = resolveDefaultModel(uri.startsWith('file://') ? decodeURIComponent(uri.slice(7)) : uri, fs.existsSync);
  const ext = path.extname(location).toLowerCase();
  if (ext === '.safetensors') return { kind: 'safetensors', location };
  if (H5_EXTENSIONS.includes(ext)) return { kind: 'keras-h5', location };
  if (!fs.existsSync(location)) {
    throw new ModelFormatError(location, 'no such file or folder (expected a tfjs model folder, model.json, .safetensors or .h5)');
  }
  if (fs.statSync(location).isDirectory() || ext === '.json') {
    const json = resolveModelJson(location);
    return { kind: isGraphModelJson(json) ? 'tfjs-graph' : 'tfjs-layers', location: json };
  }
  throw new ModelFormatError(location, `unrecognised model file extension "${ext}" (expected a tfjs model folder, model.json, .safetensors or .h5)`);
}

/** tfjs GraphModels say `format: graph-model`; older converters only leave a `node` list in the topology. */
function isGraphModelJson(file: string): boolean {
  try {
    const head = JSON.parse(fs.readFileSync(file, 'utf-8'));
    return head.format === 'graph-model' || Array.isArray(head?.modelTopology?.node);
  } catch {
    return false; // the LayersModel loader reports unreadable JSON with its own checks
  }
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

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError } from '../errors';
import { buildArch } from './arch';
import { loadKerasH5 } from './keras-h5';
import type { ModelRequest, ModelSource } from './source';
import { resolveModelJson, loadLayersFolder } from './tfjs-layers';
import { backboneFromBuilt, LoadedBackbone, loadTorchSafetensors } from './torch-source';

export interface LoadBackboneOptions {
  /** Force an architecture (safetensors / .h5), or name it for `arch:` URIs. */
  arch?: string;
  /** Square input side; default the architecture's own (224). */
  inputSize?: number;
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
 * `file://` prefixes are accepted; remote URLs are not fetched here.
 */
export function classifySource(uri: string): { kind: SourceKind; location: string } {
  if (uri.startsWith('arch:')) return { kind: 'scratch', location: uri.slice(5) };
  if (/^https?:\/\//i.test(uri)) {
    throw new ModelFormatError(uri, 'remote URLs are not fetched by the model loader; download the file and pass its local path');
  }
  const location = uri.startsWith('file://') ? decodeURIComponent(uri.slice(7)) : uri;
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
 * One entry point for every pretrained source: returns a trainable Backbone (a functional
 * LayersModel with declared stages). GraphModels are refused here with the reason and the
 * alternative, since they cannot be fine-tuned (see graph-source.ts).
 */
export async function loadBackbone(uri: string, opts: LoadBackboneOptions = {}): Promise<LoadedBackbone> {
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
      throw new ModelFormatError(
        location,
        'is a tfjs GraphModel (e.g. @tensorflow-models/mobilenet): inference only, so it cannot be fine-tuned or unfrozen; use it for head-only training on cached embeddings (loadFrozenEmbedder), or pass a LayersModel, .safetensors or .h5 source to fine-tune',
      );
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

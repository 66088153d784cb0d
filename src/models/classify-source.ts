import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError } from '../errors';
import { resolveDefaultModel } from '../package-root';
import { resolveModelJson } from './tfjs-layers';

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

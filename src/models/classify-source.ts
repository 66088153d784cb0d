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
  checkFileKind(location, ext);
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

/**
 * A name that promises a file (`.safetensors`, `.h5`, `model.json`) must be a regular file: a folder gets one line
 * instead of an EISDIR from deep in a loader, and a FIFO or device is never opened (a read would block or never end).
 */
function checkFileKind(location: string, ext: string): void {
  if (ext !== '.safetensors' && ext !== '.json' && !H5_EXTENSIONS.includes(ext)) return;
  let st: fs.Stats;
  try {
    st = fs.statSync(location);
  } catch {
    return; // missing: each loader names the file it looked for
  }
  if (st.isDirectory()) throw new ModelFormatError(location, `is a folder, not a ${ext} file`);
  if (!st.isFile()) throw new ModelFormatError(location, `not a regular file (a ${ext} model file was expected)`);
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

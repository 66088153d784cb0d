import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelFormatError } from '../errors';
import { replaceFolderAtomic } from './atomic';
import { loadExport } from './exporter';

/** The page's own files, copied by the build from src/web/ to dist/web/; under tsx the sources are used. */
const PAGE_DIR = path.join(__dirname, '..', 'web');

/** tfjs and its WASM backend from the installed packages, so the page fetches nothing from outside its folder. */
function vendorFiles(): Array<{ from: string; to: string }> {
  const tfjs = path.dirname(require.resolve('@tensorflow/tfjs/package.json'));
  const wasm = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  return [
    { from: path.join(tfjs, 'dist', 'tf.min.js'), to: 'tf.min.js' },
    { from: path.join(wasm, 'dist', 'tf-backend-wasm.min.js'), to: 'tf-backend-wasm.min.js' },
    ...['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'].map((f) => ({
      from: path.join(wasm, 'dist', f),
      to: f,
    })),
  ];
}

/**
 * Writes a static classifier page for the export in `exportDir` to `outDir`: index.html and app.js, tfjs in
 * vendor/, and the export's files in model/. The export is loaded first, so an export the page could not use
 * (no metadata.json, labels that do not match the outputs, damaged weights) is refused here with one line.
 */
export async function writeWebPage(exportDir: string, outDir: string): Promise<string[]> {
  const { model, metadata } = await loadExport(exportDir);
  model.dispose();
  if (!metadata)
    throw new ModelFormatError(path.join(exportDir, 'metadata.json'), 'missing: the page needs the labels, input size and preprocessing it records');
  const modelFiles = ['model.json', 'metadata.json', ...new Set(readManifestPaths(path.join(exportDir, 'model.json')))];
  const written: string[] = [];
  await replaceFolderAtomic(outDir, (tmp) => {
    for (const f of ['index.html', 'app.js']) fs.copyFileSync(path.join(PAGE_DIR, f), path.join(tmp, f));
    fs.mkdirSync(path.join(tmp, 'vendor'));
    for (const v of vendorFiles()) fs.copyFileSync(v.from, path.join(tmp, 'vendor', v.to));
    fs.mkdirSync(path.join(tmp, 'model'));
    for (const f of modelFiles) fs.copyFileSync(path.join(exportDir, f), path.join(tmp, 'model', f));
    written.push('index.html', 'app.js', ...vendorFiles().map((v) => `vendor/${v.to}`), ...modelFiles.map((f) => `model/${f}`));
  });
  return written;
}

function readManifestPaths(modelJson: string): string[] {
  const m = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as { weightsManifest: Array<{ paths: string[] }> };
  return m.weightsManifest.flatMap((g) => g.paths);
}

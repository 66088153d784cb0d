import { packageVersion } from '../package-root';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { captureHandler, fileHandler, writeModelArtifacts } from '../models/io';
import { resolveModelJson } from '../models/tfjs-layers';
import type { Network } from '../models/network';
import { replaceFolderAtomic } from './atomic';
import { writeFileDurable } from '../io/write';
import { verifyChecksums } from '../io/checksum';
import { readExportMetadata } from './metadata-schema';

export interface ExportMetadata {
  layertuneVersion: string;
  labels: string[];
  inputSize: number;
  preprocessing: Network['backbone']['preprocess'];
  backbone: { arch: string; source: string };
  trainingConfig: unknown;
  metrics: unknown;
  createdAt: string;
}

export interface Exporter {
  export(
    net: Network,
    dir: string,
    meta: Omit<ExportMetadata, 'layertuneVersion' | 'labels' | 'inputSize' | 'preprocessing' | 'backbone' | 'createdAt'>,
  ): Promise<string>;
}

export function layertuneVersion(): string {
  return packageVersion();
}

/**
 * Writes `<dir>/model.json`, `weights.bin` and `metadata.json`: a plain tfjs LayersModel (softmax
 * output) that `tf.loadLayersModel` reads without layertune, replacing any previous export atomically.
 */
export class LayersModelExporter implements Exporter {
  async export(net: Network, dir: string, meta: Pick<ExportMetadata, 'trainingConfig' | 'metrics'>): Promise<string> {
    const h = captureHandler();
    await net.infer.save(h);
    const metadata: ExportMetadata = {
      layertuneVersion: layertuneVersion(),
      labels: net.classes,
      inputSize: net.backbone.inputSize,
      preprocessing: net.backbone.preprocess,
      backbone: { arch: net.backbone.arch, source: net.backbone.source },
      trainingConfig: meta.trainingConfig,
      metrics: meta.metrics,
      createdAt: new Date().toISOString(),
    };
    await replaceFolderAtomic(dir, (tmp) => {
      writeModelArtifacts(tmp, h.artifacts!, { userDefinedMetadata: { labels: net.classes } });
      writeFileDurable(path.join(tmp, 'metadata.json'), JSON.stringify(metadata, null, 2));
    });
    return dir;
  }
}

/** Reads an export back: model plus metadata (labels, size, preprocessing). */
export async function loadExport(dir: string): Promise<{ model: tf.LayersModel; metadata: ExportMetadata | null }> {
  const json = resolveModelJson(dir);
  // an export of ours carries checksums.sha256; a plain tfjs folder has none and loads as before
  verifyChecksums(path.dirname(json));
  const model = await tf.loadLayersModel(fileHandler(json));
  const metaPath = path.join(path.dirname(json), 'metadata.json');
  const outputs = (model.outputs[0].shape as number[]).slice(-1)[0];
  const metadata = fs.existsSync(metaPath) ? (readExportMetadata(metaPath, outputs) as unknown as ExportMetadata) : null;
  return { model, metadata };
}

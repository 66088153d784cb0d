import * as path from 'node:path';
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { ModelFormatError } from '../errors';
import { notRegularFile } from '../io/path-kind';
import { fileHandler } from './io';
import { layerGraph, replay } from './graph';
import { stagesByResolution } from './stages';
import type { Backbone, Preprocess } from './types';

export interface LayersFolderOptions {
  /** Train at this square input size instead of the model's own (convolutions do not care). */
  inputSize?: number;
  /** Override the layer whose output is the feature map. */
  featureLayer?: string;
  preprocess?: Preprocess;
}

/** Accepts a folder holding model.json, or the model.json path itself. */
export function resolveModelJson(p: string): string {
  const candidate = fs.existsSync(p) && fs.statSync(p).isDirectory() ? path.join(p, 'model.json') : p;
  if (!fs.existsSync(candidate)) throw new ModelFormatError(p, 'no model.json found (expected a tfjs LayersModel folder)');
  const kind = notRegularFile(candidate, 'model.json');
  if (kind) throw new ModelFormatError(candidate, kind);
  return candidate;
}

/** Keras/TF MobileNets expect [-1,1]; the only preprocessing tfjs LayersModels from Google ship with. */
const MOBILENET_PREPROCESS: Preprocess = { kind: 'scale', low: -1, high: 1 };

/** The feature map is what feeds the first global pooling (or flatten) layer. */
export function findFeatureLayer(model: tf.LayersModel): string {
  const nodes = layerGraph(model);
  const pool = nodes.find((n) => /GlobalAveragePooling2D|GlobalMaxPooling2D|Flatten/.test(n.className));
  if (pool?.inputs.length !== 1) {
    const last4d = [...nodes].reverse().find((n) => (model.getLayer(n.name).outputShape as number[]).length === 4);
    if (!last4d) throw new ModelFormatError(model.name, 'cannot find a 4-D feature map to attach a head to');
    return last4d.name;
  }
  return pool.inputs[0][0];
}

export function detectArch(model: tf.LayersModel): string {
  const names = new Set(model.layers.map((l) => l.name));
  if (names.has('conv_pw_13') && names.has('conv1')) {
    const filters = (model.getLayer('conv1') as any).filters as number;
    return `mobilenet_v1_${filters / 32}`;
  }
  return `layers:${model.name}`;
}

/** Loads a local tfjs LayersModel folder and cuts it at its feature layer. */
export async function loadLayersFolder(p: string, opts: LayersFolderOptions = {}): Promise<Backbone> {
  const jsonPath = resolveModelJson(p);
  let full: tf.LayersModel;
  try {
    full = await tf.loadLayersModel(fileHandler(jsonPath));
  } catch (e) {
    if (e instanceof ModelFormatError) throw e;
    throw new ModelFormatError(jsonPath, `tfjs could not build the model: ${(e as Error).message}`);
  }
  return backboneFromLayersModel(full, jsonPath, opts);
}

export function backboneFromLayersModel(full: tf.LayersModel, source: string, opts: LayersFolderOptions = {}): Backbone {
  const featureLayer = opts.featureLayer ?? findFeatureLayer(full);
  if (!full.layers.some((l) => l.name === featureLayer)) {
    throw new ModelFormatError(source, `no layer named ${featureLayer}`);
  }
  const inShape = full.inputs[0].shape;
  const size = opts.inputSize ?? (inShape[1] as number);
  const input = tf.input({ shape: [size, size, 3], name: full.inputLayers[0].name });
  const seeds = new Map([[full.inputLayers[0].name, input]]);
  const features = replay(full, seeds, featureLayer);
  const model = tf.model({ inputs: input, outputs: features, name: 'backbone' });
  // the original classifier (and anything else past the feature layer) is never used again
  const kept = new Set(model.layers.map((l) => l.name));
  for (const l of full.layers) if (!kept.has(l.name) && l.getClassName() !== 'InputLayer') l.dispose();
  const arch = detectArch(full);
  return {
    arch,
    model,
    stages: stagesByResolution(model, featureLayer),
    preprocess: opts.preprocess ?? MOBILENET_PREPROCESS,
    inputSize: size,
    source,
  };
}

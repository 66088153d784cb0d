import type * as tf from '@tensorflow/tfjs';
import type { Backbone } from './types';

/** One row of `layertune inspect`. */
export interface LayerRow {
  name: string;
  className: string;
  outputShape: Array<number | null>;
  /** Trainable parameters (BatchNorm moving statistics are counted in `stateParams`). */
  params: number;
  stateParams: number;
  stage: string;
}

export interface StageRow {
  name: string;
  endLayer: string;
  outputShape: Array<number | null>;
  params: number;
  layers: number;
}

export interface ModelDescription {
  arch: string;
  source: string;
  inputSize: number;
  layers: LayerRow[];
  stages: StageRow[];
  params: number;
  stateParams: number;
}

function size(v: tf.LayerVariable): number {
  return (v.shape as number[]).reduce((a, b) => a * b, 1);
}

/** One layer's row: class, (first) output shape, trainable and state parameter counts. */
export function layerRow(l: tf.layers.Layer, stage: string): LayerRow {
  const out = l.outputShape as Array<number | null>;
  return {
    name: l.name,
    className: l.getClassName(),
    outputShape: Array.isArray(out[0]) ? (out[0] as unknown as Array<number | null>) : out,
    params: l.trainableWeights.reduce((n, w) => n + size(w), 0),
    stateParams: l.nonTrainableWeights.reduce((n, w) => n + size(w), 0),
    stage,
  };
}

/** Layers in order with output shapes, parameter counts and the stage each belongs to. */
export function describeBackbone(b: Backbone): ModelDescription {
  const ends = new Map(b.stages.map((s, i) => [s.endLayer, i]));
  let stage = 0;
  const layers: LayerRow[] = [];
  for (const l of b.model.layers) {
    layers.push(layerRow(l, b.stages[Math.min(stage, b.stages.length - 1)]?.name ?? ''));
    if (ends.has(l.name)) stage = ends.get(l.name)! + 1;
  }
  const stages = b.stages.map((s) => {
    const rows = layers.filter((r) => r.stage === s.name);
    return {
      name: s.name,
      endLayer: s.endLayer,
      outputShape: layers.find((r) => r.name === s.endLayer)?.outputShape ?? [],
      params: rows.reduce((n, r) => n + r.params, 0),
      layers: rows.length,
    };
  });
  return {
    arch: b.arch,
    source: b.source,
    inputSize: b.inputSize,
    layers,
    stages,
    params: layers.reduce((n, r) => n + r.params, 0),
    stateParams: layers.reduce((n, r) => n + r.stateParams, 0),
  };
}

/** Plain-text tables for a terminal. */
export function formatDescription(d: ModelDescription, opts: { layers?: boolean } = {}): string {
  const shape = (s: Array<number | null>): string => `[${s.map((v) => (v === null ? '?' : v)).join(',')}]`;
  const lines = [
    `${d.arch}  input ${d.inputSize}x${d.inputSize}x3  params ${d.params.toLocaleString('en')} (+${d.stateParams.toLocaleString('en')} BatchNorm statistics)  from ${d.source}`,
  ];
  if (opts.layers ?? true) {
    lines.push('', ['layer', 'type', 'output', 'params', 'stage'].join('\t'));
    for (const r of d.layers) lines.push([r.name, r.className, shape(r.outputShape), r.params, r.stage].join('\t'));
  }
  lines.push('', ['stage', 'ends at', 'output', 'layers', 'params'].join('\t'));
  for (const s of d.stages) lines.push([s.name, s.endLayer, shape(s.outputShape), s.layers, s.params.toLocaleString('en')].join('\t'));
  return lines.join('\n');
}

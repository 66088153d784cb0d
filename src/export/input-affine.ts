/**
 * Preprocessing carried inside the exported graph: a frozen per-channel affine `y = x·scale + offset`
 * placed between the input and the first layer, so the export takes the pixels a consumer has
 * (0–255 RGB, or Teachable Machine's `x/127 − 1`) and needs no normalisation code. It is a 1×1
 * DepthwiseConv2D with fixed weights: a stock tfjs-layers class that every tfjs version loads
 * (a custom layer would need registering in every consumer, and Rescaling has no per-channel form).
 */
import * as tf from '@tensorflow/tfjs';
import type { Preprocess } from '../models/types';

export interface ChannelAffine {
  scale: [number, number, number];
  offset: [number, number, number];
}

/** What the graph's input is: `preprocessed` = apply metadata.preprocessing first (the tfjs default for a LayersModel). */
export const INPUT_CONVENTIONS = ['preprocessed', 'rgb255', 'tm'] as const;
export type InputConvention = (typeof INPUT_CONVENTIONS)[number];

/** The model's preprocessing as an affine on 0–255 pixels, matching `preprocessBatch`. */
export function rgb255Affine(p: Preprocess): ChannelAffine {
  if (p.kind === 'scale') {
    const s = (p.high - p.low) / 255;
    return { scale: [s, s, s], offset: [p.low, p.low, p.low] };
  }
  const ch = (f: (i: number) => number) => [f(0), f(1), f(2)] as [number, number, number];
  return { scale: ch((i) => 1 / (255 * p.std[i])), offset: ch((i) => -p.mean[i] / p.std[i]) };
}

/**
 * The model's preprocessing as an affine on Teachable Machine's input `t = x/127 − 1`: x = 127(t + 1),
 * so y = a·x + b = 127a·t + (127a + b).
 */
export function tmAffine(p: Preprocess): ChannelAffine {
  const r = rgb255Affine(p);
  return {
    scale: r.scale.map((a) => 127 * a) as ChannelAffine['scale'],
    offset: r.offset.map((b, i) => 127 * r.scale[i] + b) as ChannelAffine['offset'],
  };
}

/** The affine a graph with input `convention` needs in front of it; null for `preprocessed` (nothing to add). */
export function affineFor(convention: InputConvention, p: Preprocess): ChannelAffine | null {
  if (convention === 'preprocessed') return null;
  return convention === 'rgb255' ? rgb255Affine(p) : tmAffine(p);
}

/** The serialized form tfjs writes for a frozen 1×1 depthwise layer, taken from tfjs itself rather than typed by hand. */
async function depthwiseLayerJson(name: string): Promise<Record<string, unknown>> {
  const input = tf.input({ shape: [4, 4, 3] });
  const layer = tf.layers.depthwiseConv2d({ name, kernelSize: 1, depthMultiplier: 1, useBias: true, trainable: false });
  const m = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
  let topology: any;
  await m.save({ save: async (a) => ((topology = a.modelTopology), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }) });
  m.dispose();
  const json = topology.config.layers.find((l: { name: string }) => l.name === name);
  return { class_name: json.class_name, config: json.config, name };
}

/**
 * Returns `artifacts` with the affine inserted after the (single) input layer: every layer that read the
 * input now reads the affine's output, and the affine's kernel and bias are appended to the weights.
 * The topology is edited rather than the model rebuilt, so any functional graph (ResNet's skips,
 * nested blocks) keeps its exact structure and weight names.
 */
export async function bakeInputAffine(artifacts: tf.io.ModelArtifacts, affine: ChannelAffine, name = 'lt_input_affine'): Promise<tf.io.ModelArtifacts> {
  const topology = structuredClone(artifacts.modelTopology) as any;
  if (topology?.config?.input_layers?.length !== 1) {
    throw new Error('bakeInputAffine: expected a functional model with one input');
  }
  const layers = topology.config.layers as Array<{ name: string; inbound_nodes: unknown[][][] }>;
  if (layers.some((l) => l.name === name)) throw new Error(`bakeInputAffine: the model already has a layer named ${name}`);
  const inputName = topology.config.input_layers[0][0] as string;
  for (const l of layers) {
    for (const node of l.inbound_nodes ?? []) {
      for (const edge of node) if (edge[0] === inputName) edge[0] = name;
    }
  }
  const at = layers.findIndex((l) => l.name === inputName);
  layers.splice(at + 1, 0, { ...(await depthwiseLayerJson(name)), inbound_nodes: [[[inputName, 0, 0, {}]]] } as never);
  const extra = new Float32Array([...affine.scale, ...affine.offset]);
  const data = new Uint8Array((artifacts.weightData as ArrayBuffer).byteLength + extra.byteLength);
  data.set(new Uint8Array(artifacts.weightData as ArrayBuffer), 0);
  data.set(new Uint8Array(extra.buffer), (artifacts.weightData as ArrayBuffer).byteLength);
  return {
    ...artifacts,
    modelTopology: topology,
    weightSpecs: [
      ...(artifacts.weightSpecs ?? []),
      { name: `${name}/depthwise_kernel`, shape: [1, 1, 3, 1], dtype: 'float32' },
      { name: `${name}/bias`, shape: [3], dtype: 'float32' },
    ],
    weightData: data.buffer,
  };
}

/** How 0–255 pixels become the input of a graph with `convention`, as `preprocessBatch` applies it. */
export function inputPreprocess(convention: InputConvention | undefined, model: Preprocess): Preprocess {
  if (convention === 'rgb255') return { kind: 'scale', low: 0, high: 255 };
  // x/127 − 1 = x·(high − low)/255 + low with low = −1, high = 255/127 − 1
  if (convention === 'tm') return { kind: 'scale', low: -1, high: 255 / 127 - 1 };
  return model;
}

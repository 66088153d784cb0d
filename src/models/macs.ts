import type * as tf from '@tensorflow/tfjs';
import { flatLayers } from '../optim/named';
import type { Network } from './network';

/** What a multiply-add count needs to know of one layer: its class, config and input/output shapes (batch first). */
export interface LayerShape {
  className: string;
  config: { kernelSize?: number | number[]; depthMultiplier?: number };
  inputShape: Array<number | null>;
  outputShape: Array<number | null>;
}

const dims = (shape: Array<number | null>): number[] => shape.slice(1).map((d) => d ?? 0);
const kernelArea = (k: number | number[] | undefined): number => (Array.isArray(k) ? k.reduce((a, b) => a * b, 1) : (k ?? 1) ** 2);

/**
 * Multiply-adds of one layer's forward pass for one image: Conv2D out_h·out_w·out_c·k_h·k_w·in_c, DepthwiseConv2D
 * out_h·out_w·out_c·k_h·k_w (each output channel reads one input channel), Dense in·units. Everything else (BatchNorm,
 * activations, pooling, adds) is counted as free: it is memory traffic, not arithmetic, and small beside the convs.
 */
export function layerMultiplyAdds(l: LayerShape): number {
  const out = dims(l.outputShape);
  const inp = dims(l.inputShape);
  const outPixels = out.slice(0, -1).reduce((a, b) => a * b, 1);
  const outC = out[out.length - 1];
  const inC = inp[inp.length - 1];
  switch (l.className) {
    case 'Conv2D':
      return outPixels * outC * kernelArea(l.config.kernelSize) * inC;
    case 'DepthwiseConv2D':
      return outPixels * outC * kernelArea(l.config.kernelSize);
    case 'Dense':
      return outPixels * outC * inC;
    default:
      return 0;
  }
}

/** Which of the layer's calls belongs to `model`'s graph (tfjs keys them `<layer>_ib-<index>`); the last one otherwise. */
function nodeInModel(model: tf.LayersModel, layer: tf.layers.Layer): number {
  const keys = (model as unknown as { containerNodes?: Set<string> }).containerNodes;
  for (let i = layer.inboundNodes.length - 1; i >= 0; i--) if (keys?.has(`${layer.name}_ib-${i}`)) return i;
  return layer.inboundNodes.length - 1;
}

/** Forward multiply-adds per image of `model`'s layers for which `include(name)` holds (default: all). */
export function multiplyAddsPerImage(model: tf.LayersModel, include: (layerName: string) => boolean = () => true): number {
  let total = 0;
  for (const layer of flatLayers(model)) {
    if (!include(layer.name)) continue;
    // shapes from this model's call of the layer: a layer shared by several models (the cut prefix and suffix, a
    // backbone re-applied at another input size) has several inbound nodes, and tfjs's layer.outputShape then throws
    const node = layer.inboundNodes[nodeInModel(model, layer)];
    const input = node?.inputTensors[0];
    const output = node?.outputTensors[0];
    if (!input || !output) continue;
    total += layerMultiplyAdds({
      className: layer.getClassName(),
      config: layer.getConfig() as LayerShape['config'],
      inputShape: input.shape,
      outputShape: output.shape,
    });
  }
  return total;
}

/** Multiply-adds per image of what training computes: the layers after the `cachedStages` frozen, cached stages. */
export function trainedMultiplyAdds(network: Network, cachedStages: number): number {
  return multiplyAddsPerImage(network.train, (name) => (network.stageOf.get(name) ?? Number.POSITIVE_INFINITY) >= cachedStages);
}

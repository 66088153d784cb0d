import * as tf from '@tensorflow/tfjs';

type Sym = tf.SymbolicTensor;
interface LayerNode {
  name: string;
  className: string;
  inputs: Array<[layer: string, tensorIndex: number]>;
}

/** The model's layers in topological order with their inbound connections, read from its own config. */
export function layerGraph(model: tf.LayersModel): LayerNode[] {
  const cfg = model.getConfig() as unknown as { layers: Array<{ name: string; className: string; inboundNodes: any[] }> };
  return cfg.layers.map((l) => {
    if (l.inboundNodes.length > 1) {
      throw new Error(`layer ${l.name} is shared (called ${l.inboundNodes.length} times); graph replay needs each layer used once`);
    }
    const node: any[] = l.inboundNodes[0] ?? [];
    return { name: l.name, className: l.className, inputs: node.map((n: any[]) => [n[0], n[2]] as [string, number]) };
  });
}

/**
 * Re-applies the model's own layers (weights shared, not copied) to new symbolic inputs.
 * `seeds` maps a layer name to the tensor that stands for its output; layers upstream of every
 * seed are skipped, so a seed at layer L cuts the graph there. Replay stops after `until`.
 * Returns the output of `until` (or of the last layer reached).
 */
export function replay(model: tf.LayersModel, seeds: Map<string, Sym>, until?: string): Sym {
  return replayAll(model, seeds, until).last;
}

/** As `replay`, also returning every layer's output on the new inputs (for shape queries). */
export function replayAll(model: tf.LayersModel, seeds: Map<string, Sym>, until?: string): { last: Sym; outputs: Map<string, Sym[]> } {
  const outs = new Map<string, Sym[]>();
  for (const [k, v] of seeds) outs.set(k, [v]);
  let last: Sym | undefined;
  for (const node of layerGraph(model)) {
    if (outs.has(node.name)) {
      last = outs.get(node.name)![0];
    } else if (node.inputs.length > 0 && node.inputs.every(([l]) => outs.has(l))) {
      const ins = node.inputs.map(([l, t]) => outs.get(l)![t]);
      const res = model.getLayer(node.name).apply(ins.length === 1 ? ins[0] : ins) as Sym | Sym[];
      outs.set(node.name, Array.isArray(res) ? res : [res]);
      last = outs.get(node.name)![0];
    }
    if (node.name === until) break;
  }
  if (until !== undefined && !outs.has(until)) throw new Error(`layer ${until} is not reachable from the given inputs`);
  if (!last) throw new Error('nothing to replay');
  return { last, outputs: outs };
}

/** Names of the layers strictly after `from` up to and including `to` in topological order. */
export function layersBetween(model: tf.LayersModel, from: string | null, to: string): string[] {
  const names = layerGraph(model).map((n) => n.name);
  const start = from === null ? 0 : names.indexOf(from) + 1;
  const end = names.indexOf(to);
  if (end < 0) throw new Error(`no layer named ${to}`);
  return names.slice(start, end + 1).filter((n) => model.getLayer(n).getClassName() !== 'InputLayer');
}

/** Output shape of every layer of a single-input model, computed on a fresh symbolic input. */
export function layerShapes(model: tf.LayersModel): Map<string, number[]> {
  const inputLayer = model.inputLayers[0];
  const input = tf.input({ shape: model.inputs[0].shape.slice(1) as number[] });
  const { outputs } = replayAll(model, new Map([[inputLayer.name, input]]));
  return new Map([...outputs].map(([k, v]) => [k, v[0].shape as number[]]));
}

import type * as tf from '@tensorflow/tfjs';
import { layerGraph, layerShapes } from './graph';
import type { StageDef } from './types';

/**
 * Layers after which the graph narrows to a single live tensor: the only places a network can be
 * cut into a frozen prefix and a trainable suffix. (Inside a residual block two tensors are live.)
 */
export function chainPoints(model: tf.LayersModel): string[] {
  const nodes = layerGraph(model);
  const pos = new Map(nodes.map((n, i) => [n.name, i]));
  // lastUse[i] = the latest position that consumes layer i's output
  const lastUse = nodes.map(() => -1);
  nodes.forEach((n, i) => n.inputs.forEach(([l]) => (lastUse[pos.get(l)!] = Math.max(lastUse[pos.get(l)!], i))));
  // position i is a chain point when nothing before it is consumed after it
  return nodes.filter((_, i) => nodes.slice(0, i).every((__, j) => lastUse[j] <= i)).map((n) => n.name);
}

/**
 * Declares stages by spatial resolution: a stage ends at the last chain point before the feature
 * map shrinks, which is how MobileNet and ResNet papers name their stages. Used for LayersModels
 * loaded from model.json, which carry no stage annotations of their own.
 */
export function stagesByResolution(model: tf.LayersModel, featureLayer: string): StageDef[] {
  const points = chainPoints(model);
  const names = layerGraph(model).map((n) => n.name);
  const featureIdx = names.indexOf(featureLayer);
  const shapes = layerShapes(model);
  const spatial = (name: string): number => {
    const shape = shapes.get(name);
    return shape && shape.length === 4 ? shape[1] : -1;
  };
  const stages: StageDef[] = [];
  const candidates = points.filter((p) => names.indexOf(p) <= featureIdx && model.getLayer(p).getClassName() !== 'InputLayer');
  for (let k = 0; k < candidates.length; k++) {
    const here = candidates[k];
    const next = candidates[k + 1];
    if (next === undefined || spatial(next) !== spatial(here)) {
      // the first layer after `here` may shrink resolution; `here` closes the stage
      const shrinksAfter = next === undefined || spatial(next) < spatial(here);
      if (shrinksAfter || next === undefined) stages.push({ name: `stage${stages.length}`, endLayer: here });
    }
  }
  if (stages.length === 0 || stages[stages.length - 1].endLayer !== featureLayer) {
    stages.push({ name: `stage${stages.length}`, endLayer: featureLayer });
  }
  stages[0].name = 'stem';
  return stages;
}

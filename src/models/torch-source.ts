import type * as tf from '@tensorflow/tfjs';
import { buildArch, type BuiltArch } from './arch';
import { readSafetensors } from './safetensors';
import { inferTorchArch, loadTorchWeights, type TorchArchInfo, torchHeadInfo } from './torch-weights';
import type { Backbone } from './types';

/** A Backbone that also keeps the checkpoint's own classifier (for parity checks and `predict`). */
export interface LoadedBackbone extends Backbone {
  /** input → logits of the original head, sharing layers with `model`; absent for headless files. */
  classifier?: tf.LayersModel;
  numClasses?: number;
}

export interface TorchSourceOptions {
  /** Force an architecture instead of inferring it from tensor names (mismatches are reported). */
  arch?: string;
  inputSize?: number;
}

export function backboneFromBuilt(built: BuiltArch, source: string, numClasses: number): LoadedBackbone {
  return {
    arch: built.arch,
    model: built.features,
    stages: built.stages,
    preprocess: built.preprocess,
    inputSize: built.inputSize,
    source,
    classifier: built.classifier,
    numClasses,
  };
}

/** Loads torchvision- or timm-named PyTorch weights from a .safetensors file. */
export function loadTorchSafetensors(file: string, opts: TorchSourceOptions = {}): LoadedBackbone {
  const st = readSafetensors(file);
  // a forced architecture skips inference: its mismatches are then reported tensor by tensor
  const inferred: TorchArchInfo = opts.arch ? torchHeadInfo(st, opts.arch) : inferTorchArch(st);
  const arch = inferred.arch;
  const built = buildArch(arch, { convention: 'torch', inputSize: opts.inputSize, numClasses: inferred.numClasses }, file);
  try {
    loadTorchWeights(built, st, inferred.naming);
  } catch (e) {
    disposeBuilt(built);
    throw e;
  }
  return backboneFromBuilt(built, file, inferred.numClasses);
}

/** Frees every weight of a built architecture; the classifier holds all layers of the features. */
export function disposeBuilt(built: BuiltArch): void {
  (built.classifier ?? built.features).dispose();
}

/** Frees the weights of a loaded backbone and of its classifier (they share layers). */
export function disposeLoaded(loaded: LoadedBackbone): void {
  (loaded.classifier ?? loaded.model).dispose();
}

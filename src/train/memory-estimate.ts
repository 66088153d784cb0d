/**
 * Peak memory of a training run, estimated from the topology before any image is read, so a size and batch that
 * cannot fit are refused or shrunk with one line instead of ending in `RuntimeError: Aborted()` from the wasm heap
 * or a silent OOM kill.
 *
 *   weights      4 bytes × every parameter (frozen ones too: the forward pass reads them)
 *   gradients    4 bytes × every trainable parameter
 *   optimizer    4 bytes × trainable parameters × the algorithm's slots (momentum 1, Adam 2, RMSprop up to 3)
 *   activations  4 bytes × Σ over layers of the layer's output elements per image × batch × ACTIVATION_FACTOR
 *
 * Output elements grow with size², which is what makes `--size 1024` two orders of magnitude heavier than 224.
 */
import * as os from 'node:os';
import * as fs from 'node:fs';
import type * as tf from '@tensorflow/tfjs';
import { flatLayers } from '../optim/named';

/**
 * Every layer output is kept for the backward pass, and the backward pass holds a gradient of about the same size
 * while it runs. Measured on the default MobileNet on wasm at batch 8: peak RSS rose 738 MB from size 224 to 448
 * while the forward activations rose 360 MB, a factor of 2.05.
 */
export const ACTIVATION_FACTOR = 2;

/** wasm32's whole address space: every tensor of the wasm backend lives inside it. */
export const WASM_HEAP_BYTES = 4 * 1024 ** 3;

/** What the runtime itself needs outside tensors (Node, tfjs, the decoders). */
export const RUNTIME_BYTES = 300 * 1024 ** 2;

export interface MemoryEstimate {
  weights: number;
  gradients: number;
  optimizer: number;
  /** Activations of one image; times batch × ACTIVATION_FACTOR in `total`. */
  activationsPerImage: number;
  batch: number;
  total: number;
}

export interface ModelCounts {
  /** Every parameter of the model. */
  params: number;
  trainableParams: number;
  /** Output elements of every layer for one image (batch dimension left out). */
  activationElements: number;
}

function elements(shape: ReadonlyArray<number | null>): number {
  // the first dimension is the batch (null in a layer's outputShape)
  return shape.slice(1).reduce<number>((a, d) => a * (d ?? 1), 1);
}

/** Parameters and per-image activation elements of `model`, read from its layers' shapes (nothing is run). */
export function countModel(model: tf.LayersModel, trainableParams?: number): ModelCounts {
  let params = 0;
  let trainable = 0;
  let activationElements = 0;
  const seen = new Set<string>();
  for (const layer of flatLayers(model)) {
    for (const w of layer.weights) {
      if (seen.has(w.originalName)) continue;
      seen.add(w.originalName);
      const n = (w.shape as number[]).reduce((a, b) => a * b, 1);
      params += n;
      if (w.trainable) trainable += n;
    }
    // InputLayers hold the image itself, which the batch also keeps alive. A layer shared by the backbone and the
    // training model has one node per model, maybe at different sizes: the last node is the training model's
    const nodes = (layer as unknown as { inboundNodes: Array<{ outputShapes: unknown }> }).inboundNodes;
    const out = nodes.length ? nodes[nodes.length - 1].outputShapes : layer.outputShape;
    const shapes = Array.isArray(out) && Array.isArray(out[0]) ? (out as Array<Array<number | null>>) : [out as Array<number | null>];
    for (const s of shapes) activationElements += elements(s);
  }
  // the caller knows which variables the plan trains (a frozen group leaves w.trainable set)
  return { params, trainableParams: trainableParams ?? trainable, activationElements };
}

export function estimateMemory(c: ModelCounts, batch: number, optimizerSlots: number): MemoryEstimate {
  const weights = 4 * c.params;
  const gradients = 4 * c.trainableParams;
  const optimizer = 4 * c.trainableParams * optimizerSlots;
  const activationsPerImage = 4 * c.activationElements;
  return {
    weights,
    gradients,
    optimizer,
    activationsPerImage,
    batch,
    total: RUNTIME_BYTES + weights + gradients + optimizer + activationsPerImage * batch * ACTIVATION_FACTOR,
  };
}

/** The largest batch whose estimate fits in `budget`, 0 when not even one image does. */
export function largestBatch(c: ModelCounts, optimizerSlots: number, budget: number): number {
  const fixed = estimateMemory(c, 0, optimizerSlots).total;
  const perImage = 4 * c.activationElements * ACTIVATION_FACTOR;
  return perImage > 0 ? Math.max(0, Math.floor((budget - fixed) / perImage)) : Number.MAX_SAFE_INTEGER;
}

/** Memory this process may use: the machine's available memory, the cgroup's limit, and the wasm heap on wasm. */
export function memoryBudget(tfBackend: string): { bytes: number; limitedBy: string } {
  const limits: Array<[number, string]> = [[availableMemory(), 'available memory']];
  const cg = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  // Node reports "no limit" as 2^64 or 0
  if (cg && cg < Number.MAX_SAFE_INTEGER) limits.push([cg, 'the memory limit of this container']);
  if (tfBackend === 'wasm') limits.push([WASM_HEAP_BYTES, 'the 4 GB wasm heap']);
  limits.sort((a, b) => a[0] - b[0]);
  return { bytes: limits[0][0], limitedBy: limits[0][1] };
}

function availableMemory(): number {
  // MemAvailable counts reclaimable page cache, which os.freemem() on older Node does not
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return os.freemem();
}

export function formatBytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GB` : `${(n / 1024 ** 2).toFixed(0)} MB`;
}

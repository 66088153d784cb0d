/**
 * tfjs-core 4.22's `engine.gradients` with the memory of the backward pass released as it goes.
 *
 * The stock version keeps every tensor the forward pass saved for its gradient, and the gradient of every
 * intermediate tensor, until the whole backward pass is over: its peak is the saved activations plus the
 * gradients of all of them (for a full-backbone ResNet-18 shard of 8 images at 224 px, the training thread's heap
 * went from 88 to 756 MB in the first step). Walking the tape backwards, once a node's input gradients are computed
 * its own saved tensors and the gradients of its outputs are never read again, so this version disposes them there.
 * The same kernels run on the same inputs in the same order; only the frees come earlier, so every number is the
 * stock version's (the demo's run stays byte-identical). Higher-order gradients (a gradient taken inside a
 * gradient) keep the stock behaviour throughout, and the gradients the caller asked for stay.
 *
 * Installed on the engine instance, so it applies to every backend of this thread; the wasm setup installs it
 * (src/engine/wasm/index.ts), where each thread's heap keeps its high-water mark for good.
 */
import * as tf from '@tensorflow/tfjs';

type Tensor = tf.Tensor;
interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, Tensor>;
  outputs: Tensor[];
  gradient?: ((dys: Array<Tensor | null>) => Record<string, () => Tensor>) | null;
  saved?: Tensor[];
}
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
  gradients: (f: () => Tensor, xs: Tensor[], dy?: Tensor, allowNoGradients?: boolean) => { value: Tensor; grads: Tensor[] };
}

const INSTALLED = Symbol.for('layertune.leanBackprop');
/** The tfjs-core version this copy of its backward pass was taken from; another keeps the stock one. */
export const LEAN_BACKPROP_TFJS = '4.22.0';

/** The nodes of `tape` on a path from one of `xs` to `y`, inputs not from `xs` pruned (tfjs-core's getFilteredNodesXToY). */
function nodesFromXsToY(tape: TapeNode[], xs: Tensor[], y: Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodesFromX.add(node.id);
    }
  }
  const leadToY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => leadToY.has(o.id))) {
      for (const input of Object.values(node.inputs)) {
        leadToY.add(input.id);
        nodesToY.add(node.id);
      }
    }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, Tensor> = {};
    for (const [name, input] of Object.entries(node.inputs)) if (fromX.has(input.id)) inputs[name] = input;
    filtered.push({ ...node, inputs, outputs: node.outputs });
  }
  return filtered;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Backpropagates through `tape` (tfjs-core's backpropagateGradients). With `release`, what each node leaves behind
 * goes as soon as it is done: the gradients of its outputs (but for the ids in `keep`), its saved tensors, and an input
 * gradient once added into the running sum; a tensor still held in the map is never disposed.
 */
function backpropagate(grads: Map<number, Tensor>, tape: TapeNode[], tidy: <T extends Tensor>(f: () => T) => T, keep: Set<number>, release: boolean): void {
  const held = (t: Tensor) => {
    for (const g of grads.values()) if (g === t) return true;
    return false;
  };
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
    if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const inputGradients = node.gradient(dys);
    for (const name in node.inputs) {
      if (!(name in inputGradients)) {
        throw new Error(`Cannot backprop through input ${name}. Available gradients found: ${Object.keys(inputGradients)}.`);
      }
      const dx = tidy(() => inputGradients[name]());
      if (dx.dtype !== 'float32') {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${name} must have 'float32' dtype, but has '${dx.dtype}'`);
      }
      const x = node.inputs[name];
      if (!sameShape(dx.shape, x.shape)) {
        throw new Error(
          `Error in gradient for op ${node.kernelName}. The gradient of input '${name}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
        );
      }
      const current = grads.get(x.id);
      if (current == null) grads.set(x.id, dx);
      else {
        grads.set(x.id, tf.add(current, dx));
        current.dispose();
        if (release && !held(dx) && !dys.includes(dx) && !(node.saved ?? []).includes(dx)) dx.dispose();
      }
    }
    if (!release) continue;
    // nothing earlier on the tape reads this node's outputs' gradients or what it saved
    for (const o of node.outputs) {
      const g = grads.get(o.id);
      if (!g || keep.has(o.id)) continue;
      grads.delete(o.id);
      if (!held(g)) g.dispose();
    }
    for (const t of node.saved ?? []) if (!held(t)) t.dispose();
  }
}

/** Replaces this thread's engine.gradients with the releasing one (idempotent; a tfjs-core of another version is left as is). */
export function installLeanBackprop(): boolean {
  if (tf.version_core !== LEAN_BACKPROP_TFJS) return false;
  const engine = tf.engine() as unknown as EngineInternals & { [INSTALLED]?: EngineInternals['gradients'] };
  if (engine[INSTALLED]) return true;
  const stock = engine.gradients;
  engine.gradients = function (this: EngineInternals, f, xs, dy, allowNoGradients = false) {
    if (xs.length === 0) throw new Error('gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = this.scopedRun(
      () => this.startTape(),
      () => this.endTape(),
      () => this.tidy('forward', f),
    );
    if (!(y instanceof tf.Tensor)) throw new Error('The result y returned by f() must be a tensor.');
    const tape = nodesFromXsToY(this.state.activeTape ?? [], xs, y);
    if (!allowNoGradients && tape.length === 0 && xs.length > 0) {
      throw new Error('Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.');
    }
    return this.tidy('backward', () => {
      const grads = new Map<number, Tensor>([[y.id, dy == null ? tf.ones(y.shape) : dy]]);
      const topLevel = this.state.gradientDepth === 0;
      // inside another gradient the outer tape may still need all of it: the stock behaviour there
      const keep = new Set([y.id, ...xs.map((x) => x.id)]);
      backpropagate(grads, tape, (g) => this.tidy(g), keep, topLevel);
      const out = xs.map((x) => grads.get(x.id) as Tensor);
      if (topLevel) {
        for (const node of this.state.activeTape ?? []) for (const t of node.saved ?? []) t.dispose();
        this.state.activeTape = null;
      }
      return { value: y, grads: out } as unknown as tf.TensorContainer;
    }) as unknown as { value: Tensor; grads: Tensor[] };
  };
  engine[INSTALLED] = stock;
  return true;
}

/** Puts the stock engine.gradients back (what the tests compare against); false when it was in place. */
export function uninstallLeanBackprop(): boolean {
  const engine = tf.engine() as unknown as EngineInternals & { [INSTALLED]?: EngineInternals['gradients'] };
  const stock = engine[INSTALLED];
  if (!stock) return false;
  engine.gradients = stock;
  delete engine[INSTALLED];
  return true;
}

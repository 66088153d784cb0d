/**
 * Replays every case of a PyTorch optimizer-reference file (format of ../shared/reference/optimizers.json)
 * through GroupedOptimizer and prints one JSON line per case:
 *   {"optimizer","schedule","maxAbsErr","maxRelErr","ok"}
 * A case is ok when every parameter after every step satisfies |ours − ref| ≤ atol + rtol·|ref|
 * (rtol 1e-5, atol 1e-7) and the per-parameter lr of every step matches the file's `lr[t]`.
 * Exits 1 if any case fails, 2 on an unreadable file.
 *
 *   npx tsx scripts/replay-optimizer-reference.ts test/fixtures/optimizers.json [--backend cpu|wasm]
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { DECOUPLED_ALGORITHMS, GroupedOptimizer, type Algorithm, type DecayMode, type ParamGroup } from '../src/optim';

export const RTOL = 1e-5;
export const ATOL = 1e-7;

export interface RefParam {
  name: string;
  shape: number[];
  group: string;
  role: 'weight' | 'bias' | 'norm';
  init: number[];
  curvature: number[];
  target: number[];
  noise: number[][];
}
export interface RefCase {
  optimizer: string;
  schedule: string;
  momentum?: number;
  trajectory: Record<string, number[]>[];
  lr: Record<string, number>[];
}
export interface RefFile {
  about: string;
  hyper: {
    group_lrs: Record<string, number>;
    weight_decay: number;
    adamw_weight_decay?: number;
    momentum: number;
    bias_lr_mult: number;
    steps: number;
    betas?: [number, number];
    eps?: number;
  };
  params: RefParam[];
  cases: RefCase[];
}
export interface CaseResult {
  optimizer: string;
  schedule: string;
  maxAbsErr: number;
  maxRelErr: number;
  /** Largest relative difference between our per-parameter lr and the file's `lr[t]`. */
  maxLrErr: number;
  ok: boolean;
}

/**
 * The schedules the reference files name. `warmupW_stepS`: factor(t) = 0.1 + 0.9·t/W for t < W,
 * else 0.1^floor((t−W)/S) (the file's `about`). Null for a name we do not know.
 */
export function scheduleFactor(name: string): ((t: number) => number) | null {
  if (name === 'constant') return () => 1;
  const m = /^warmup(\d+)_step(\d+)$/.exec(name);
  if (m) {
    const w = Number(m[1]);
    const s = Number(m[2]);
    return (t) => (t < w ? 0.1 + (0.9 * t) / w : 0.1 ** Math.floor((t - w) / s));
  }
  return null;
}

/** The fixture's conventions as parameter groups: layer group × role, biases at bias_lr_mult, decay on weights only. */
export function referenceGroups(ref: RefFile, c: RefCase): { algorithm: Algorithm; groups: ParamGroup[] } {
  const algorithm = c.optimizer as Algorithm;
  const decayMode: DecayMode = DECOUPLED_ALGORITHMS.has(algorithm) ? 'decoupled' : 'coupled';
  const wd = algorithm === 'adamw' ? (ref.hyper.adamw_weight_decay ?? ref.hyper.weight_decay) : ref.hyper.weight_decay;
  const momentum = c.momentum ?? ref.hyper.momentum;
  const byKey = new Map<string, ParamGroup>();
  for (const p of ref.params) {
    const base = ref.hyper.group_lrs[p.group];
    if (base === undefined) throw new Error(`param ${p.name}: group "${p.group}" has no entry in hyper.group_lrs`);
    const key = `${p.group}/${p.role}`;
    let g = byKey.get(key);
    if (!g) {
      g = {
        name: key,
        params: [],
        lr: p.role === 'bias' ? base * ref.hyper.bias_lr_mult : base,
        weightDecay: p.role === 'weight' ? wd : 0,
        decayMode,
        momentum,
        betas: ref.hyper.betas,
        eps: ref.hyper.eps,
      };
      byKey.set(key, g);
    }
    g.params.push(p.name);
  }
  return { algorithm, groups: [...byKey.values()] };
}

/**
 * Replays one case; gradients follow the file's oracle g = curvature·(p − target) + noise[t], in float32.
 * `setup` replaces the fixture-convention groups (tests pass groups built by `planGroups`).
 */
export function replayCase(ref: RefFile, c: RefCase, setup?: { algorithm: Algorithm; groups: ParamGroup[] }): CaseResult {
  const { algorithm, groups } = setup ?? referenceGroups(ref, c);
  const steps = c.trajectory.length;
  const known = scheduleFactor(c.schedule);
  const first = ref.params[0];
  const baseLr = new Map<string, number>();
  for (const g of groups) for (const p of g.params) baseLr.set(p, g.lr);
  // Unknown schedule names: take the factor from the file's own lr column (first parameter).
  const factor = known ?? ((t: number) => c.lr[t][first.name] / baseLr.get(first.name)!);
  if (!known) process.stderr.write(`schedule "${c.schedule}" unknown: factor read from the file's lr[t]\n`);

  const vars: Record<string, tf.Variable> = {};
  const consts: Record<string, { c: tf.Tensor; target: tf.Tensor }> = {};
  for (const p of ref.params) {
    vars[p.name] = tf.tidy(() => tf.variable(tf.tensor(p.init, p.shape, 'float32'), true));
    consts[p.name] = { c: tf.tensor(p.curvature, p.shape, 'float32'), target: tf.tensor(p.target, p.shape, 'float32') };
  }
  const opt = new GroupedOptimizer(groups, { algorithm });
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let maxLrErr = 0;
  let ok = true;
  try {
    for (let t = 0; t < steps; t++) {
      const grads: Record<string, tf.Tensor> = {};
      for (const p of ref.params) {
        grads[p.name] = tf.tidy(() => tf.add(tf.mul(consts[p.name].c, tf.sub(vars[p.name], consts[p.name].target)), tf.tensor(p.noise[t], p.shape, 'float32')));
      }
      const f = factor(t);
      const res = opt.step(grads, vars, f);
      tf.dispose(Object.values(grads));
      for (const g of groups) {
        for (const name of g.params) {
          const want = c.lr[t]?.[name];
          if (want === undefined) continue;
          const got = res.lrs[g.name];
          const e = Math.abs(got - want) / Math.max(Math.abs(want), 1e-300);
          maxLrErr = Math.max(maxLrErr, e);
          if (e > 1e-9) ok = false;
        }
      }
      for (const p of ref.params) {
        const want = c.trajectory[t][p.name];
        const got = vars[p.name].dataSync();
        if (want.length !== got.length)
          throw new Error(`case ${c.optimizer}/${c.schedule} step ${t} ${p.name}: ${want.length} reference values, ${got.length} ours`);
        for (let i = 0; i < want.length; i++) {
          const abs = Math.abs(got[i] - want[i]);
          if (!(abs <= ATOL + RTOL * Math.abs(want[i]))) ok = false;
          maxAbsErr = Math.max(maxAbsErr, abs);
          if (want[i] !== 0) maxRelErr = Math.max(maxRelErr, abs / Math.abs(want[i]));
        }
      }
    }
  } finally {
    opt.dispose();
    tf.dispose(Object.values(vars));
    for (const k of Object.values(consts)) tf.dispose([k.c, k.target]);
  }
  if (!Number.isFinite(maxAbsErr)) ok = false;
  return { optimizer: c.optimizer, schedule: c.schedule, maxAbsErr, maxRelErr, maxLrErr, ok };
}

export function readReference(file: string): RefFile {
  const ref = JSON.parse(fs.readFileSync(file, 'utf8')) as RefFile;
  if (!ref || !Array.isArray(ref.params) || !Array.isArray(ref.cases) || !ref.hyper) {
    throw new Error(`${file}: not an optimizer reference file (needs hyper, params[], cases[])`);
  }
  return ref;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const bi = args.indexOf('--backend');
  const backend = bi >= 0 ? args.splice(bi, 2)[1] : 'cpu';
  const file = args[0];
  if (!file) {
    process.stderr.write('usage: replay-optimizer-reference.ts FIXTURE.json [--backend cpu|wasm]\n');
    return 2;
  }
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) {
    process.stderr.write(`backend "${backend}" could not be initialised\n`);
    return 2;
  }
  await tf.ready();
  process.stderr.write(`backend: ${tf.getBackend()}\n`);
  let ref: RefFile;
  try {
    ref = readReference(file);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 2;
  }
  let allOk = true;
  for (const c of ref.cases) {
    const r = replayCase(ref, c);
    allOk &&= r.ok;
    process.stdout.write(`${JSON.stringify({ optimizer: r.optimizer, schedule: r.schedule, maxAbsErr: r.maxAbsErr, maxRelErr: r.maxRelErr, ok: r.ok })}\n`);
  }
  return allOk ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(2);
    },
  );
}

import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import type { Stateful } from '../stateful';
import { RULES, type UpdateRule } from './algorithms';
import { applyUpdate, decayGradient } from './decay';
import { checkDecayModeFits } from './schema';
import {
  ALGORITHMS,
  DECAY_MODES,
  type Algorithm,
  type OptimizerDefaults,
  type OptimizerState,
  type ParamGroup,
  type ResolvedGroup,
  type StepOptions,
  type StepResult,
  type UpdateNorm,
} from './types';

export const OPTIMIZER_DEFAULTS: OptimizerDefaults = {
  momentum: 0.9,
  dampening: 0,
  betas: [0.9, 0.999],
  eps: 1e-8,
  alpha: 0.99,
  centered: false,
  trustCoefficient: 0.001,
};

export interface GroupedOptimizerOptions extends Partial<OptimizerDefaults> {
  algorithm: Algorithm;
  /** Compute update/weight norms on every step (else only when `step(..., {norms: true})`). */
  norms?: boolean;
}

interface VarState {
  step: number;
  slots: Record<string, tf.Variable>;
}

/**
 * An optimizer over named parameter groups, PyTorch `param_groups` style, with its state keyed by
 * variable NAME. tfjs optimizers key slots by position in the variable list, which silently mixes up
 * momentum when one optimizer serves several groups or the list changes; here a variable's slots
 * follow its name, so groups can be rebuilt, frozen variables dropped and state checkpointed.
 *
 * Drive it with named gradients:
 *   const opt = new GroupedOptimizer(groups, { algorithm: 'momentum' });
 *   const { grads } = namedVariableGrads(lossFn, vars);   // or any Record<string, tf.Tensor>
 *   opt.step(grads, vars, schedule(step));                // lr of each group = group.lr × factor
 * The caller keeps ownership of `grads` (dispose them); the optimizer owns its slots (`dispose()`).
 */
export class GroupedOptimizer implements Stateful<OptimizerState> {
  readonly stateKey = 'optimizer';
  readonly algorithm: Algorithm;
  private readonly rule: UpdateRule;
  private groupList: ResolvedGroup[];
  private readonly groupOf = new Map<string, ResolvedGroup>();
  private readonly state = new Map<string, VarState>();
  private stepCount = 0;
  private readonly alwaysNorms: boolean;

  constructor(groups: ParamGroup[], options: GroupedOptimizerOptions) {
    if (!(ALGORITHMS as readonly string[]).includes(options.algorithm)) {
      throw new ConfigError('optimizer.algorithm', `unknown algorithm "${String(options.algorithm)}"; expected one of ${ALGORITHMS.join(', ')}`);
    }
    this.algorithm = options.algorithm;
    this.rule = RULES[options.algorithm];
    this.alwaysNorms = options.norms ?? false;
    const defaults: OptimizerDefaults = { ...OPTIMIZER_DEFAULTS };
    for (const k of Object.keys(OPTIMIZER_DEFAULTS) as (keyof OptimizerDefaults)[]) {
      if (options[k] !== undefined) (defaults as unknown as Record<string, unknown>)[k] = options[k];
    }
    this.groupList = groups.map((g) => resolveGroup(g, defaults, this.algorithm));
    for (const g of this.groupList) {
      for (const p of g.params) {
        const other = this.groupOf.get(p);
        if (other) throw new ConfigError(`groups.${g.name}.params`, `variable "${p}" is already in group "${other.name}"`);
        this.groupOf.set(p, g);
      }
    }
    const names = new Set<string>();
    for (const g of this.groupList) {
      if (names.has(g.name)) throw new ConfigError(`groups.${g.name}`, 'duplicate group name');
      names.add(g.name);
    }
  }

  /** The groups as the optimizer uses them (defaults filled in). Read-only copies. */
  get groups(): ResolvedGroup[] {
    return this.groupList.map((g) => ({ ...g, params: [...g.params], betas: [...g.betas] as [number, number] }));
  }

  get iterations(): number {
    return this.stepCount;
  }

  /**
   * Change hyper-parameters of one group between steps (a callback lowering a group's lr, ...).
   * Membership (`params`) cannot change here: build a new optimizer and move state with get/setState.
   */
  updateGroup(name: string, patch: Partial<Omit<ParamGroup, 'name' | 'params'>>): void {
    const i = this.groupList.findIndex((g) => g.name === name);
    if (i < 0) throw new ConfigError(`groups.${name}`, 'no such group');
    const old = this.groupList[i];
    const next = resolveGroup({ ...old, ...patch, name: old.name, params: old.params }, old, this.algorithm);
    this.groupList[i] = next;
    for (const p of next.params) this.groupOf.set(p, next);
  }

  /**
   * One update of every variable that has a gradient in `grads` (variables of a group without a
   * gradient are skipped, their state untouched, as PyTorch does for `grad is None`).
   * A gradient for a variable in no group is a bug in the caller (e.g. a frozen variable was
   * differentiated) and throws.
   */
  step(grads: Record<string, tf.Tensor>, vars: Record<string, tf.Variable>, lrFactor = 1, options: StepOptions = {}): StepResult {
    for (const name of Object.keys(grads)) {
      if (!this.groupOf.has(name)) throw new Error(`GroupedOptimizer: gradient for "${name}", which is in no parameter group`);
      if (!vars[name]) throw new Error(`GroupedOptimizer: gradient for "${name}" but no such variable was passed`);
    }
    if (!Number.isFinite(lrFactor) || lrFactor < 0) throw new Error(`GroupedOptimizer: lrFactor must be finite and >= 0, got ${lrFactor}`);
    const wantNorms = options.norms ?? this.alwaysNorms;
    this.stepCount += 1;
    const lrs: Record<string, number> = {};
    const normNames: string[] = [];
    const normGroups: string[] = [];

    let normPairs: tf.Tensor | null = null;
    tf.tidy(() => {
      const pairs: tf.Tensor[] = [];
      for (const group of this.groupList) {
        const lr = group.lr * lrFactor;
        lrs[group.name] = lr;
        for (const name of group.params) {
          const grad = grads[name];
          if (grad === undefined) continue;
          const v = vars[name];
          const st = this.state.get(name) ?? { step: 0, slots: {} };
          st.step += 1;
          const g = decayGradient(grad, v, group.weightDecay, group.decayMode);
          const out = this.rule.compute({ w: v, g, gRaw: grad, slots: st.slots, step: st.step, lr, group });
          const next = applyUpdate(v, out.delta, lr, group.weightDecay, group.decayMode, this.rule.decoupledStyle);
          if (wantNorms) {
            // Two sums per variable, all read back in one transfer below.
            // Without decoupled decay the applied change is exactly −delta: skip a subtraction.
            const change = group.decayMode === 'decoupled' && group.weightDecay > 0 ? tf.sub(next, v) : out.delta;
            pairs.push(tf.stack([tf.sum(tf.square(change)), tf.sum(tf.square(next))]));
            normNames.push(name);
            normGroups.push(group.name);
          }
          v.assign(next);
          for (const [slot, value] of Object.entries(out.slots)) {
            const existing = st.slots[slot];
            if (existing) existing.assign(value);
            else st.slots[slot] = tf.variable(value, false);
          }
          this.state.set(name, st);
        }
      }
      if (pairs.length > 0) normPairs = tf.keep(tf.stack(pairs));
    });

    const result: StepResult = { step: this.stepCount, lrs };
    if (normPairs !== null) {
      const pairsTensor: tf.Tensor = normPairs;
      const flat = pairsTensor.dataSync();
      pairsTensor.dispose();
      const varsOut: Record<string, UpdateNorm> = {};
      const sq: Record<string, { update: number; weight: number }> = {};
      normNames.forEach((name, i) => {
        const u = flat[2 * i];
        const w = flat[2 * i + 1];
        varsOut[name] = { update: Math.sqrt(u), weight: Math.sqrt(w) };
        const acc = (sq[normGroups[i]] ??= { update: 0, weight: 0 });
        acc.update += u;
        acc.weight += w;
      });
      const groupsOut: Record<string, UpdateNorm> = {};
      for (const [g, s] of Object.entries(sq)) groupsOut[g] = { update: Math.sqrt(s.update), weight: Math.sqrt(s.weight) };
      result.norms = { vars: varsOut, groups: groupsOut };
    }
    return result;
  }

  /** Slots as plain typed arrays keyed by variable name, plus step counts: what a checkpoint stores. */
  getState(): OptimizerState {
    const vars: OptimizerState['vars'] = {};
    for (const [name, st] of this.state) {
      const slots: Record<string, { shape: number[]; values: Float32Array }> = {};
      for (const [slot, t] of Object.entries(st.slots)) {
        slots[slot] = { shape: [...t.shape], values: Float32Array.from(t.dataSync() as Float32Array) };
      }
      vars[name] = { step: st.step, slots };
    }
    return { algorithm: this.algorithm, step: this.stepCount, vars };
  }

  /**
   * Restores state saved by `getState` (possibly from an optimizer with other groups). Variables
   * that are in no group now (e.g. frozen since) are skipped and listed in `ignored`.
   */
  setState(state: OptimizerState): { ignored: string[] } {
    if (state.algorithm !== this.algorithm) {
      throw new ConfigError('optimizer.algorithm', `checkpoint state is for "${state.algorithm}", optimizer is "${this.algorithm}"`);
    }
    const next = new Map<string, VarState>();
    const ignored: string[] = [];
    try {
      for (const [name, saved] of Object.entries(state.vars)) {
        if (!this.groupOf.has(name)) {
          ignored.push(name);
          continue;
        }
        const slots: Record<string, tf.Variable> = {};
        next.set(name, { step: saved.step, slots });
        for (const [slot, { shape, values }] of Object.entries(saved.slots)) {
          if (!this.rule.slots.includes(slot)) throw new Error(`optimizer state: unknown slot "${slot}" for "${name}" (${this.algorithm})`);
          const size = shape.reduce((a, b) => a * b, 1);
          if (size !== values.length) throw new Error(`optimizer state: slot ${name}/${slot} has ${values.length} values for shape [${shape}]`);
          slots[slot] = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), false));
        }
      }
    } catch (e) {
      for (const st of next.values()) for (const t of Object.values(st.slots)) t.dispose();
      throw e;
    }
    this.disposeSlots();
    for (const [k, v] of next) this.state.set(k, v);
    this.stepCount = state.step;
    return { ignored };
  }

  /** Frees every slot tensor. The optimizer can still step afterwards (slots start fresh). */
  dispose(): void {
    this.disposeSlots();
  }

  private disposeSlots(): void {
    for (const st of this.state.values()) for (const t of Object.values(st.slots)) t.dispose();
    this.state.clear();
  }
}

function checkRate(path: string, v: number, what: string): void {
  if (!Number.isFinite(v) || v < 0) throw new ConfigError(path, `${what} must be a finite number >= 0, got ${v}`);
}

function checkUnit(path: string, v: number, what: string): void {
  if (!(v >= 0 && v < 1)) throw new ConfigError(path, `${what} must be in [0, 1), got ${v}`);
}

/** Fills a group's missing fields from the defaults and validates it. */
export function resolveGroup(g: ParamGroup, d: OptimizerDefaults, algorithm: Algorithm): ResolvedGroup {
  const at = `groups.${g.name}`;
  if (typeof g.name !== 'string' || g.name === '') throw new ConfigError('groups', 'every group needs a non-empty name');
  if (!Array.isArray(g.params)) throw new ConfigError(`${at}.params`, 'must be an array of variable names');
  checkRate(`${at}.lr`, g.lr, 'lr');
  checkRate(`${at}.weightDecay`, g.weightDecay, 'weightDecay');
  if (!(DECAY_MODES as readonly string[]).includes(g.decayMode)) {
    throw new ConfigError(`${at}.decayMode`, `unknown decay mode "${String(g.decayMode)}"; expected one of ${DECAY_MODES.join(', ')}`);
  }
  checkDecayModeFits(algorithm, g.decayMode, `${at}.decayMode`);
  const r: ResolvedGroup = {
    name: g.name,
    params: [...g.params],
    lr: g.lr,
    weightDecay: g.weightDecay,
    decayMode: g.decayMode,
    momentum: g.momentum ?? d.momentum,
    dampening: g.dampening ?? d.dampening,
    betas: g.betas ?? d.betas,
    eps: g.eps ?? d.eps,
    alpha: g.alpha ?? d.alpha,
    centered: g.centered ?? d.centered,
    trustCoefficient: g.trustCoefficient ?? d.trustCoefficient,
    adaptive: g.adaptive ?? true,
  };
  checkUnit(`${at}.momentum`, r.momentum, 'momentum');
  checkUnit(`${at}.dampening`, r.dampening, 'dampening');
  checkUnit(`${at}.betas[0]`, r.betas[0], 'beta1');
  checkUnit(`${at}.betas[1]`, r.betas[1], 'beta2');
  checkUnit(`${at}.alpha`, r.alpha, 'alpha');
  if (!(r.eps > 0)) throw new ConfigError(`${at}.eps`, `eps must be > 0, got ${r.eps}`);
  checkRate(`${at}.trustCoefficient`, r.trustCoefficient, 'trustCoefficient');
  if (algorithm === 'nesterov' && (r.momentum <= 0 || r.dampening !== 0)) {
    throw new ConfigError(`${at}.momentum`, 'nesterov needs momentum > 0 and dampening 0 (as in PyTorch)');
  }
  return r;
}

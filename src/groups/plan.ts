import { ConfigError } from '../errors';
import { checkDecayModeFits, parseOrThrow, resolveOptimizer, type OptimizerInput, type ResolvedOptimizer } from '../optim/schema';
import type { Algorithm, DecayMode, ParamGroup } from '../optim/types';
import { geometricRates, layerDecayRates, splitStages, steppedRates } from './rates';
import { groupingSchema, type GroupingConfig, type GroupingInput, type GroupRule } from './schema';
import type { GroupPlan, LayerGroup, LayerInfo, PlanRow, PlanWarning, VarRole } from './types';

/**
 * Layers → parameter groups, a pure function of plain data. Validates both configs (ConfigError
 * naming the field or layer), assigns each layer a group from the strategy, applies the rules, then
 * the role multipliers:
 *   lr(var) = groupLr (or rule lr) × rule lrMult × role lrMult        (at schedule factor 1)
 *   wd(var) = optimizer.weightDecay × rule decayMult × role decayMult
 * Variables whose lr comes out 0 (freeze, lrMult 0, a role multiplier 0) are frozen: listed in
 * `frozen`, absent from `groups`, and never to be differentiated.
 */
export function planGroups(layers: LayerInfo[], grouping?: GroupingInput, optimizer?: OptimizerInput): GroupPlan {
  const cfg = parseOrThrow(groupingSchema, grouping, 'groups') as GroupingConfig;
  const opt = resolveOptimizer(optimizer);
  checkLayers(layers);
  const warnings: PlanWarning[] = [];

  const base = baseAssignment(layers, cfg);
  const rules = compileRules(cfg.rules);
  const perLayer = applyRules(layers, rules, base, cfg, opt.algorithm, warnings);

  const rows: PlanRow[] = [];
  const groups: ParamGroup[] = [];
  const byKey = new Map<string, ParamGroup>();
  const namesTaken = new Set<string>();
  for (const layer of layers) {
    const s = perLayer.get(layer.name)!;
    for (const v of layer.variables) {
      const roleLr = v.role === 'bias' ? cfg.biasLrMult : v.role === 'norm' ? cfg.normLrMult : 1;
      const roleDecay = v.role === 'bias' ? cfg.biasDecayMult : v.role === 'norm' ? cfg.normDecayMult : 1;
      const lr = s.frozen ? 0 : s.lr * roleLr;
      const frozen = lr === 0;
      const weightDecay = frozen ? 0 : opt.weightDecay * s.decayMult * roleDecay;
      const decayMode = s.decayMode ?? opt.decayMode;
      let paramGroup: string | null = null;
      if (!frozen) {
        const key = `${s.group}\u0000${v.role}\u0000${lr}\u0000${weightDecay}\u0000${decayMode}`;
        let g = byKey.get(key);
        if (!g) {
          let name = `${s.group}/${v.role}`;
          for (let k = 2; namesTaken.has(name); k++) name = `${s.group}/${v.role}#${k}`;
          namesTaken.add(name);
          g = paramGroupFor(name, lr, weightDecay, decayMode, v.role, opt);
          byKey.set(key, g);
          groups.push(g);
        }
        g.params.push(v.name);
        paramGroup = g.name;
      }
      rows.push({ name: v.name, layer: layer.name, group: s.group, paramGroup, role: v.role, frozen, lr, weightDecay, decayMode });
    }
  }
  if (rows.length > 0 && rows.every((r) => r.frozen)) warnings.push({ path: 'groups', message: 'every variable is frozen: nothing will train' });

  const layerGroups: LayerGroup[] = [];
  const lgIndex = new Map<string, LayerGroup>();
  for (const g of base.groups) {
    const lg = { name: g.name, lr: g.lr, layers: [] as string[] };
    lgIndex.set(g.name, lg);
    layerGroups.push(lg);
  }
  for (const layer of layers) {
    const s = perLayer.get(layer.name)!;
    let lg = lgIndex.get(s.group);
    if (!lg) {
      lg = { name: s.group, lr: s.groupLr, layers: [] };
      lgIndex.set(s.group, lg);
      layerGroups.push(lg);
    }
    lg.layers.push(layer.name);
  }

  return {
    algorithm: opt.algorithm,
    optimizer: opt,
    layerGroups,
    groups,
    trainable: rows.filter((r) => !r.frozen).map((r) => r.name),
    frozen: rows.filter((r) => r.frozen).map((r) => r.name),
    rows,
    warnings,
  };
}

function paramGroupFor(name: string, lr: number, weightDecay: number, decayMode: DecayMode, role: VarRole, o: ResolvedOptimizer): ParamGroup {
  return {
    name,
    params: [],
    lr,
    weightDecay,
    decayMode,
    momentum: o.momentum,
    dampening: o.dampening,
    betas: [o.betas[0], o.betas[1]],
    eps: o.eps,
    alpha: o.alpha,
    centered: o.centered,
    trustCoefficient: o.trustCoefficient,
    // LARS practice: biases and norm parameters take plain SGD steps, no trust ratio.
    adaptive: role === 'kernel',
  };
}

function checkLayers(layers: LayerInfo[]): void {
  if (!Array.isArray(layers) || layers.length === 0) throw new ConfigError('groups', 'the model has no layers with trainable variables to group');
  const layerNames = new Set<string>();
  const varNames = new Set<string>();
  for (const l of layers) {
    if (layerNames.has(l.name)) throw new ConfigError(`layers.${l.name}`, 'duplicate layer name');
    layerNames.add(l.name);
    if (!l.isHead && !(Number.isInteger(l.stage) && l.stage >= 0)) {
      throw new ConfigError(`layers.${l.name}.stage`, `stage must be an integer >= 0, got ${l.stage}`);
    }
    for (const v of l.variables) {
      if (varNames.has(v.name)) throw new ConfigError(`layers.${l.name}`, `variable "${v.name}" appears twice`);
      varNames.add(v.name);
      if (v.role !== 'kernel' && v.role !== 'bias' && v.role !== 'norm') {
        throw new ConfigError(`layers.${l.name}.${v.name}`, `unknown role "${String(v.role)}"`);
      }
    }
  }
}

interface BaseAssignment {
  groups: { name: string; lr: number }[];
  groupOf: Map<string, string>;
}

/** The strategy's own grouping: layer → group name, group → lr. */
function baseAssignment(layers: LayerInfo[], cfg: GroupingConfig): BaseAssignment {
  const groupOf = new Map<string, string>();
  if (cfg.strategy === 'rules') {
    for (const l of layers) groupOf.set(l.name, 'base');
    return { groups: [{ name: 'base', lr: cfg.lr }], groupOf };
  }
  const stages = [...new Set(layers.filter((l) => !l.isHead).map((l) => l.stage))].sort((a, b) => a - b);
  const stageIdx = new Map(stages.map((s, i) => [s, i]));
  let lrs: number[];
  let indexOfStage: (k: number) => number;
  if (cfg.strategy === 'layerDecay') {
    lrs = layerDecayRates(cfg.lr, cfg.decay, stages.length);
    indexOfStage = (k) => k;
  } else {
    const n = cfg.groups;
    if (stages.length > 0 && n > stages.length) {
      throw new ConfigError('groups.groups', `${n} groups asked for, but the layers span only ${stages.length} backbone stage(s)`);
    }
    if (cfg.strategy === 'stepped') lrs = steppedRates(cfg.top, cfg.factor, n);
    else if (cfg.strategy === 'geometric') {
      if (cfg.lo > cfg.hi) throw new ConfigError('groups.lo', `lo (${cfg.lo}) must not exceed hi (${cfg.hi})`);
      if (cfg.lo === 0 && n > 1) throw new ConfigError('groups.lo', 'lo must be > 0 for log spacing');
      lrs = geometricRates(cfg.lo, cfg.hi, n);
    } else {
      lrs = cfg.lrs ?? steppedRates(0.1, 10, n);
      if (lrs.length !== n) throw new ConfigError('groups.lrs', `${lrs.length} rates given for ${n} groups`);
    }
    const split = splitStages(stages.length, n);
    indexOfStage = (k) => split[k];
  }
  const last = lrs.length - 1;
  for (const l of layers) groupOf.set(l.name, `g${l.isHead ? last : indexOfStage(stageIdx.get(l.stage)!)}`);
  return { groups: lrs.map((lr, i) => ({ name: `g${i}`, lr })), groupOf };
}

interface CompiledRule {
  index: number;
  re: RegExp;
  rule: GroupRule;
}

function compileRules(rules: GroupRule[]): CompiledRule[] {
  return rules.map((rule, index) => {
    try {
      return { index, re: new RegExp(rule.match), rule };
    } catch (e) {
      throw new ConfigError(`groups.rules[${index}].match`, `invalid regular expression /${rule.match}/: ${(e as Error).message}`);
    }
  });
}

interface LayerSettings {
  group: string;
  /** Base lr of the layer's group. */
  groupLr: number;
  /** The layer's lr before role multipliers (group or rule lr × lrMult). */
  lr: number;
  decayMult: number;
  decayMode?: DecayMode;
  frozen: boolean;
}

function applyRules(
  layers: LayerInfo[],
  rules: CompiledRule[],
  base: BaseAssignment,
  cfg: GroupingConfig,
  algorithm: Algorithm,
  warnings: PlanWarning[],
): Map<string, LayerSettings> {
  const groupLr = new Map(base.groups.map((g) => [g.name, g.lr]));
  // Groups that rules create: their lr is the lr of the rule(s) naming them, which must agree.
  const created = new Map<string, { lr: number; rule: number }>();
  for (const { index, rule } of rules) {
    if (rule.group === undefined || groupLr.has(rule.group)) continue;
    const prev = created.get(rule.group);
    if (rule.lr === undefined) continue;
    if (prev && prev.lr !== rule.lr) {
      throw new ConfigError(`groups.rules[${index}].lr`, `group "${rule.group}" gets lr ${prev.lr} from rules[${prev.rule}] and ${rule.lr} here`);
    }
    if (!prev) created.set(rule.group, { lr: rule.lr, rule: index });
  }
  for (const { index, rule } of rules) {
    if (rule.group !== undefined && !groupLr.has(rule.group) && !created.has(rule.group)) {
      throw new ConfigError(
        `groups.rules[${index}].group`,
        `group "${rule.group}" is not one of ${[...groupLr.keys()].join(', ')}; give the rule an lr to create it`,
      );
    }
  }
  for (const { index, re, rule } of rules) {
    if (!layers.some((l) => re.test(l.name))) {
      const message = `/${rule.match}/ matches no layer`;
      if (cfg.strict) throw new ConfigError(`groups.rules[${index}].match`, message);
      warnings.push({ path: `groups.rules[${index}].match`, message });
    }
    if (rule.decayMode !== undefined) checkDecayModeFits(algorithm, rule.decayMode, `groups.rules[${index}].decayMode`);
  }

  const out = new Map<string, LayerSettings>();
  for (const layer of layers) {
    const matched = rules.filter((r) => r.re.test(layer.name));
    const first = <K extends keyof GroupRule>(k: K): { value: GroupRule[K]; index: number } | undefined => {
      const r = matched.find((m) => m.rule[k] !== undefined);
      return r ? { value: r.rule[k], index: r.index } : undefined;
    };
    const groupRule = first('group');
    if (groupRule) {
      const clash = matched.find((m) => m.rule.group !== undefined && m.rule.group !== groupRule.value);
      if (clash) {
        throw new ConfigError(
          `groups.rules[${clash.index}].group`,
          `layer "${layer.name}" is matched by rules[${groupRule.index}] (group "${groupRule.value}") and rules[${clash.index}] (group "${clash.rule.group}")`,
        );
      }
    }
    const group = (groupRule?.value as string | undefined) ?? base.groupOf.get(layer.name)!;
    const gLr = groupLr.get(group) ?? created.get(group)!.lr;
    const lr = ((first('lr')?.value as number | undefined) ?? gLr) * ((first('lrMult')?.value as number | undefined) ?? 1);
    const freeze = (first('freeze')?.value as boolean | undefined) ?? false;
    out.set(layer.name, {
      group,
      groupLr: gLr,
      lr,
      decayMult: (first('decayMult')?.value as number | undefined) ?? 1,
      decayMode: first('decayMode')?.value as DecayMode | undefined,
      frozen: freeze || lr === 0,
    });
  }
  return out;
}

/**
 * `layertune plan`: the dry run. Builds the job exactly as `train` would (prepare(): data scan, model, groups,
 * schedule) and prints, without training, every trainable variable with its group, role, learning rate at step 0,
 * at the end of warmup and at the last step, its weight decay and whether it is frozen.
 */
import { describeAugment, frozenPrefixRule } from '../../data/augment';
import { describeJobInputs } from '../../data/presize';
import type { Command } from 'commander';
import { planLrWdWarnings } from '../../tune/rules';
import { prepare, type Prepared } from '../../job';
import { ConfigError } from '../../errors';
import { collapseByLayer } from '../../groups';
import type { VarRole } from '../../groups';
import { lrPlan, formatLrPlan, type LrPlan } from '../../schedules/plan';
import type { DecayMode } from '../../optim/types';
import { flagsToJob, withJobFlags } from '../flags';

export interface LrPoints {
  start: number;
  /** The rate at the first step after warmup (= start when there is no warmup). */
  warmupEnd: number;
  end: number;
}

/** One element of `plan --json`. */
export interface VariablePlan {
  name: string;
  layer: string;
  group: string;
  role: VarRole;
  frozen: boolean;
  lr: LrPoints;
  weightDecay: number;
  decayMode: DecayMode;
  /** The optimizer group the variable is in (null when frozen), its algorithm and momentum. */
  paramGroup: string | null;
  algorithm: string;
  momentum: number;
}

/** One element of `plan --json --by layer`. */
export interface LayerPlan {
  layer: string;
  group: string;
  variables: string[];
  frozen: boolean;
  lr: Partial<Record<VarRole, LrPoints>>;
  weightDecay: Partial<Record<VarRole, number>>;
  decayMode: DecayMode;
}

export interface JobPlan {
  lr: LrPlan;
  /** Schedule factors at the three points (plateau left out: it depends on metrics not seen yet). */
  factors: LrPoints;
  variables: VariablePlan[];
  layers: LayerPlan[];
  warnings: string[];
}

/** The plan of a prepared job: pure arithmetic over its group plan and resolved schedule. */
export function buildPlan(p: Prepared): JobPlan {
  const resolved = p.schedule.resolved;
  const { stepsPerEpoch, totalSteps, warmup } = resolved.lr;
  const at = (step: number) => resolved.factor(step, Math.floor(step / stepsPerEpoch));
  const factors: LrPoints = { start: at(0), warmupEnd: at(warmup.steps), end: at(totalSteps - 1) };
  const times = (lr: number): LrPoints => ({ start: lr * factors.start, warmupEnd: lr * factors.warmupEnd, end: lr * factors.end });
  const momentumOf = new Map(p.plan.groups.map((g) => [g.name, g.momentum]));
  const variables = p.plan.rows.map((r) => ({
    name: r.name,
    layer: r.layer,
    group: r.group,
    role: r.role,
    frozen: r.frozen,
    lr: times(r.lr),
    weightDecay: r.weightDecay,
    decayMode: r.decayMode,
    paramGroup: r.paramGroup,
    algorithm: p.plan.algorithm,
    momentum: (r.paramGroup !== null ? momentumOf.get(r.paramGroup) : undefined) ?? p.plan.optimizer.momentum,
  }));
  const layers = collapseByLayer(p.plan.rows).map((l) => ({
    ...l,
    lr: Object.fromEntries(Object.entries(l.lr).map(([role, lr]) => [role, times(lr as number)])) as LayerPlan['lr'],
  }));
  // grouping warnings were already printed by prepare(); these are the plan's own
  const warnings: string[] = [];
  const eff = resolved.lr.effectiveBatch;
  if (eff > p.data.train.length) {
    warnings.push(
      `the effective batch ${eff} (batch ${p.job.train.batch} × accumulate ${p.job.train.accumulate}) is larger than the ${p.data.train.length} training images: ` +
        `each optimizer step averages over at most ${p.data.train.length} images while the rates are scaled for ${eff}`,
    );
  }
  // rule of thumb: a group's rate and decay two to three orders of magnitude apart (lr/wd within 10…10⁴)
  for (const w of planLrWdWarnings(p)) warnings.push(w.message);
  return { lr: lrPlan(resolved), factors, variables, layers, warnings };
}

const n = (x: number): string => Number(x.toPrecision(4)).toString();

/** The text form: the resolved rate numbers, then one line per variable (or per layer). */
export function formatPlan(plan: JobPlan, p: Prepared, byLayer: boolean): string[] {
  const out: string[] = [];
  const o = p.plan.optimizer;
  out.push(`model     ${p.network.backbone.arch} (${p.network.backbone.source}), input ${p.network.backbone.inputSize}px, ${p.network.classes.length} classes`);
  out.push(
    `data      ${p.data.train.length} train / ${p.data.val.length} val images; batch ${p.job.train.batch}` +
      (p.job.train.accumulate > 1 ? ` × accumulate ${p.job.train.accumulate} = effective ${plan.lr.effectiveBatch}` : '') +
      `; ${p.batchesPerEpoch} batches = ${p.stepsPerEpoch} optimizer steps per epoch`,
  );
  out.push(`optimizer ${o.algorithm}${o.algorithm === 'sgd' ? '' : `, momentum ${o.momentum}`}, weight decay ${o.decayMode} by default`);
  out.push(...formatLrPlan(plan.lr));
  out.push(
    `recipe    ${p.job.recipe ?? 'none (the defaults, which are the classic recipe)'}${p.job.recipe && p.job.recipe !== 'classic' ? ': its values lie under the job, whose own fields win' : ''}`,
  );
  out.push(`augment   ${describeAugment(p.job)}`);
  out.push(`inputs    ${describeJobInputs(p.job, p.network.backbone.inputSize)}`);
  if (p.cachedStages > 0) out.push(`frozen    the first ${p.cachedStages} stage(s): ${frozenPrefixRule(p.job.data.augment)}`);
  out.push('');
  const head = ['group', 'role', 'lr start', 'warmup end', 'last', 'decay', 'mode', ''];
  const rows: string[][] = [];
  if (byLayer) {
    for (const l of plan.layers) {
      for (const [role, lr] of Object.entries(l.lr) as Array<[VarRole, LrPoints]>) {
        rows.push([l.layer, l.group, role, n(lr.start), n(lr.warmupEnd), n(lr.end), n(l.weightDecay[role] ?? 0), l.decayMode, l.frozen ? 'frozen' : '']);
      }
    }
  } else {
    for (const v of plan.variables)
      rows.push([v.name, v.group, v.role, n(v.lr.start), n(v.lr.warmupEnd), n(v.lr.end), n(v.weightDecay), v.decayMode, v.frozen ? 'frozen' : '']);
  }
  const table = [[byLayer ? 'layer' : 'variable', ...head], ...rows];
  const widths = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)));
  for (const r of table)
    out.push(
      r
        .map((c, i) => (i >= 3 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
        .join('  ')
        .trimEnd(),
    );
  for (const w of plan.warnings) out.push(`warning: ${w}`);
  return out;
}

export function register(program: Command): void {
  withJobFlags(program.command('plan').description("dry run: every variable's group, role, learning rate over the run and weight decay, without training"))
    .option('--json', 'a JSON array on stdout: one object per variable (per layer with --by layer)')
    .option('--by <unit>', 'variable (default) | layer: collapse the variables of a layer')
    .action(async (o) => {
      const by = o.by ?? 'variable';
      if (by !== 'variable' && by !== 'layer') throw new ConfigError('--by', `expected variable or layer, got "${by}"`);
      // progress lines go to stderr so that stdout is the plan alone
      const p = await prepare(flagsToJob(o), { configFile: o.config, log: (s) => console.error(s) });
      const plan = buildPlan(p);
      if (o.json) {
        console.log(JSON.stringify(by === 'layer' ? plan.layers : plan.variables, null, 1));
        for (const w of plan.warnings) console.error(`warning: ${w}`);
        return;
      }
      console.log(formatPlan(plan, p, by === 'layer').join('\n'));
    });
}

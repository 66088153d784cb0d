/**
 * `layertune plan`: the dry run. Builds the job exactly as `train` would (prepare(): data scan, model, groups,
 * schedule) and prints, without training, the plan the library computes (src/train/plan.ts): every trainable
 * variable with its group, role, learning rate at step 0, at the end of warmup and at the last step, its weight
 * decay and whether it is frozen.
 */
import { describeAugment } from '../../data/augment';
import { frozenPrefixRule } from '../../data/cached-views';
import { describeJobInputs } from '../../data/presize';
import type { Command } from 'commander';
import { prefixCacheSize, prepare, type Prepared } from '../../job';
import { ConfigError } from '../../errors';
import type { VarRole } from '../../groups';
import { formatLrPlan } from '../../schedules/plan';
import { buildPlan, type JobPlan, type LrPoints } from '../../train/plan';
import { flagsToJob, withJobFlags } from '../flags';

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
  out.push(`augment   ${describeAugment(p.job)} (${p.augmentRule})`);
  out.push(`inputs    ${describeJobInputs(p.job, p.network.backbone.inputSize)}`);
  if (p.cachedStages > 0) out.push(`frozen    the first ${p.cachedStages} stage(s): ${frozenPrefixRule(p.job.data.augment, prefixCacheSize(p))}`);
  for (const line of plan.fineTune?.lines ?? []) out.push(`fine-tune ${line}`);
  if (plan.fineTune) {
    out.push("fine-tune the schedule lines above are the unfrozen phase's cycle alone; the table's rates are that phase's at");
    out.push('          its first step, its peak and its last step');
  }
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

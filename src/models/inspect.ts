import { describeLayers, planGroups, type GroupingInput } from '../groups';
import { describeBackbone, formatDescription, layerRow, type LayerRow, type ModelDescription } from './describe';
import { attachHead, HEAD_LAYERS } from './network';
import type { Backbone } from './types';

/** One layer group of the default plan: its rate at the reference batch and what it holds. */
export interface InspectGroup {
  name: string;
  /** Base rate of the group at lr.baseBatch, before role multipliers, batch scaling and schedule. */
  lr: number;
  /** Backbone stage names (and `head`) whose layers fall in the group. */
  stages: string[];
  /** Layers with trainable variables in the group (weight-less layers belong to no group). */
  layers: number;
  params: number;
}

/** What `layertune inspect` reports: the backbone, the head a job would attach, and the default groups. */
export interface Inspection extends ModelDescription {
  preprocess: Backbone['preprocess'];
  /** The new head's layers for `headClasses` classes (pooling, dropout, dense). */
  head: LayerRow[];
  headClasses: number;
  groups: InspectGroup[];
  /** The planner's non-fatal findings (e.g. every variable frozen). */
  warnings: string[];
  /** Why only a head can be trained (GraphModels); absent for fine-tunable backbones. */
  headOnly?: string;
}

/**
 * Describes a loaded backbone as a job would see it: a head for `classes` dummy classes is attached,
 * its layers described and planned with `grouping` (default: the job default, 3 stepped groups).
 * The head's weights are freed again; the backbone is left as it was.
 */
export function inspectBackbone(backbone: Backbone, opts: { classes?: number; grouping?: GroupingInput } = {}): Inspection {
  const classes = opts.classes ?? 2;
  const d = describeBackbone(backbone);
  const net = attachHead(
    backbone,
    Array.from({ length: classes }, (_, i) => `class_${i}`),
    { dropout: 0, seed: 0 },
  );
  try {
    const headNames = new Set<string>(HEAD_LAYERS);
    const infos = describeLayers(net.train, (name) => net.stageOf.get(name) ?? 0, headNames);
    const plan = planGroups(infos, opts.grouping);
    const head: LayerRow[] = net.train.layers.filter((l) => headNames.has(l.name)).map((l) => layerRow(l, 'head'));
    const stageOfLayer = new Map<string, string>([...d.layers.map((r) => [r.name, r.stage] as const), ...head.map((r) => [r.name, 'head'] as const)]);
    const paramsOf = new Map<string, number>([...d.layers, ...head].map((r) => [r.name, r.params]));
    const groups = plan.layerGroups.map((g) => ({
      name: g.name,
      lr: g.lr,
      stages: [...new Set(g.layers.map((l) => stageOfLayer.get(l) ?? '?'))],
      layers: g.layers.length,
      params: g.layers.reduce((n, l) => n + (paramsOf.get(l) ?? 0), 0),
    }));
    return {
      ...d,
      preprocess: backbone.preprocess,
      head,
      headClasses: classes,
      groups,
      warnings: plan.warnings.map((w) => `${w.path}: ${w.message}`),
      headOnly: backbone.headOnly,
    };
  } finally {
    // only the head's weights are new; the backbone's layers stay usable (layer.dispose() goes by
    // reference counts, which symbolic re-application raises, so the variables are freed directly)
    for (const l of net.train.layers) if ((HEAD_LAYERS as readonly string[]).includes(l.name)) for (const w of l.weights) w.dispose();
  }
}

/** Plain-text report for a terminal: the backbone tables, the head, then the groups. */
export function formatInspection(i: Inspection, opts: { layers?: boolean } = {}): string {
  const shape = (s: Array<number | null>): string => `[${s.map((v) => (v === null ? '?' : v)).join(',')}]`;
  const pre =
    i.preprocess.kind === 'scale'
      ? `pixels scaled to [${i.preprocess.low},${i.preprocess.high}]`
      : `pixels normalised (mean ${i.preprocess.mean}, std ${i.preprocess.std})`;
  const lines = [formatDescription(i, opts), '', `input: ${pre}`];
  if (i.headOnly) lines.push(`head-only: ${i.headOnly}`);
  lines.push('', `head (${i.headClasses} classes, for illustration)`);
  for (const r of i.head) lines.push([r.name, r.className, shape(r.outputShape), r.params].join('\t'));
  lines.push(
    '',
    'groups of the default plan (rates at the reference batch, before scaling and schedule)',
    ['group', 'lr', 'stages', 'layers', 'params'].join('\t'),
  );
  for (const g of i.groups) lines.push([g.name, g.lr, g.stages.join(',') || '-', g.layers, g.params.toLocaleString('en')].join('\t'));
  for (const w of i.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

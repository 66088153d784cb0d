import type { DecayMode } from '../optim/types';
import type { PlanRow, VarRole } from './types';

/** One line of `layertune plan --by layer`: a layer's variables collapsed, values per role. */
export interface LayerPlanRow {
  layer: string;
  group: string;
  variables: string[];
  /** True when every variable of the layer is frozen. */
  frozen: boolean;
  /** lr at factor 1 per role present (0 for frozen variables). */
  lr: Partial<Record<VarRole, number>>;
  weightDecay: Partial<Record<VarRole, number>>;
  decayMode: DecayMode;
}

/** Collapses plan rows per layer, keeping layer order. Pure. */
export function collapseByLayer(rows: PlanRow[]): LayerPlanRow[] {
  const out: LayerPlanRow[] = [];
  const index = new Map<string, LayerPlanRow>();
  for (const r of rows) {
    let l = index.get(r.layer);
    if (!l) {
      l = { layer: r.layer, group: r.group, variables: [], frozen: true, lr: {}, weightDecay: {}, decayMode: r.decayMode };
      index.set(r.layer, l);
      out.push(l);
    }
    l.variables.push(r.name);
    l.frozen &&= r.frozen;
    // Several variables of one role in a layer share lr and decay (they differ only by role), so the first one speaks for all.
    l.lr[r.role] ??= r.lr;
    l.weightDecay[r.role] ??= r.weightDecay;
  }
  return out;
}

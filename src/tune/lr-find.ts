/**
 * The LR range test (Smith 2015; fastai's lr_find): train for a few steps while every group's rate grows
 * exponentially together, record the smoothed loss, read a suggestion off the curve, then put the network
 * and the optimizer back exactly as they were.
 */
import * as path from 'node:path';
import { prepare, type Prepared, type RunOptions } from '../job';
import type { JobInput } from '../config/schema';
import { TrainingError } from '../errors';
import { mergeConfig } from '../config/load';
import { parseOrThrow } from '../optim/schema';
import type { GroupedOptimizer } from '../optim';
import { CALLBACK_ORDER, CancelFit, type Callback, type BatchInfo } from '../train/callbacks';
import type { LrPolicy } from '../train/trainer';
import { chartSvg, writePng, writeTextAtomic } from '../report/svg';
import { LrFindSchema, type LrFindInput, type LrFindConfig } from './schema';
import { centredMean, minimumOver10, shouldStop, SmoothedLoss, suggestLr, sweepRate, trimCurve, valley, type CurveReading, type Suggestion } from './lr-curve';
import { SplitDataView, disposeNetwork, topGroupLr } from './parts';
import { modelWeights } from '../schedules/weights';

export interface LrFindResult {
  /** Effective rate of the top layer group at each recorded step (the other groups keep their ratio to it). */
  lrs: number[];
  losses: number[];
  smoothed: number[];
  /** Centred moving mean of the raw losses: the lag-free curve the suggestion is read from. */
  centred: number[];
  plannedSteps: number;
  stoppedBy: 'diverged' | 'nan' | 'end';
  /** Highest rate at which the loss is still clearly decreasing (see suggestLr); null with `reason` if none. */
  suggestion: Suggestion;
  valley: CurveReading;
  minimum: CurveReading;
  /** Each group's rate as a fraction of the top group's (what the sweep holds fixed). */
  groupRatios: Record<string, number>;
  /**
   * The suggestion in config units: the top group's reference rate (`groups.top`, `--lr`) that gives this
   * effective rate after batch scaling. null without a suggestion.
   */
  configLr: number | null;
  /** Batch scaling the config applies (effective = reference × scale). */
  scale: number;
  config: LrFindConfig;
}

/** The policy the sweep trains under: factor so that the top group's rate is start·(end/start)^(t/(N−1)). */
export function sweepPolicy(cfg: LrFindConfig, topLr: number): LrPolicy {
  return { factor: (step) => sweepRate(step, cfg.start, cfg.end, cfg.steps) / topLr };
}

/** Records the loss, keeps the smoothed loss, and stops at N steps, at stopFactor × the best, or on NaN. */
class SweepRecorder implements Callback {
  readonly name = 'lr-find sweep';
  readonly order = CALLBACK_ORDER.sweep;
  readonly lrs: number[] = [];
  readonly losses: number[] = [];
  readonly smoothed: number[] = [];
  stoppedBy: LrFindResult['stoppedBy'] = 'end';
  private readonly s: SmoothedLoss;
  private best = Infinity;
  constructor(private readonly cfg: LrFindConfig) {
    this.s = new SmoothedLoss(cfg.beta);
  }
  afterStep(b: BatchInfo): void {
    this.lrs.push(sweepRate(b.step, this.cfg.start, this.cfg.end, this.cfg.steps));
    this.losses.push(b.loss);
    const sm = this.s.push(b.loss);
    this.smoothed.push(sm);
    if (b.step > 0 && shouldStop(sm, this.best, this.cfg.stopFactor)) {
      this.stoppedBy = Number.isFinite(sm) ? 'diverged' : 'nan';
      throw new CancelFit('lr-find: loss diverged');
    }
    this.best = Math.min(this.best, sm);
    if (this.losses.length >= this.cfg.steps) throw new CancelFit('lr-find: sweep done');
  }
  /** A non-finite loss ends the sweep inside the trainer (it refuses the step): record it here. */
  recordNaN(): void {
    this.lrs.push(sweepRate(this.losses.length, this.cfg.start, this.cfg.end, this.cfg.steps));
    this.losses.push(NaN);
    this.smoothed.push(NaN);
    this.stoppedBy = 'nan';
  }
}

/**
 * Runs the sweep on a prepared job. With `optimizer` given, its state is saved first and restored after;
 * otherwise a fresh optimizer is made and disposed. Weights, BatchNorm moving statistics and optimizer
 * state are bit-identical before and after (restored even when the sweep throws).
 */
export async function lrRangeTest(
  p: Prepared,
  input: LrFindInput = {},
  opts: { optimizer?: GroupedOptimizer; callbacks?: Callback[] } = {},
): Promise<LrFindResult> {
  const optimizer = opts.optimizer;
  // the job's tune.lrFind section, then the call's own settings over it
  const cfg = parseOrThrow(LrFindSchema, mergeConfig(p.job.tune.lrFind, input as Record<string, unknown>), 'tune.lrFind');
  const own = optimizer === undefined;
  const opt = optimizer ?? p.stages.optimizer.create(p.plan.groups, p.job);
  const savedState = own ? null : opt.getState();
  const savedWeights = modelWeights(p.network.train).read();
  const top = topGroupLr(p);
  if (!(top > 0)) throw new TrainingError('lr-find: every group is frozen or has rate 0; nothing to sweep');
  const recorder = new SweepRecorder(cfg);
  // No validation during the sweep: it is read off training losses, and evaluation would only cost time.
  const data = new SplitDataView(p.data, p.data.train, []);
  const epochs = Math.ceil(cfg.steps / Math.max(1, p.stepsPerEpoch));
  const trainer = p.stages.trainer.create(p, {
    optimizer: opt,
    lr: sweepPolicy(cfg, top),
    callbacks: [recorder, ...(opts.callbacks ?? [])],
    epochs,
    data,
    monitorNorms: false,
    spillDir: null,
  });
  try {
    await trainer.fit();
  } catch (e) {
    // a non-finite loss is the sweep's natural end (the trainer refuses that step); any other failure is not
    if (!(e instanceof TrainingError) || !/^loss became/.test(e.message)) throw e;
    recorder.recordNaN();
  } finally {
    modelWeights(p.network.train).write(savedWeights);
    if (savedState) opt.setState(savedState);
    if (own) opt.dispose();
  }
  // fastai's readings use the EMA curve, as fastai does; ours reads a centred (lag-free) mean of the raw losses
  const t = trimCurve(recorder.lrs, recorder.smoothed, cfg.steps);
  const k = Math.max(2, Math.round(cfg.steps / 20));
  const centred = centredMean(recorder.losses, k).map((v, i) => (Number.isFinite(recorder.losses[i]) ? v : NaN));
  const tc = trimCurve(recorder.lrs, centred, cfg.steps);
  const at = (r: CurveReading): CurveReading => (r.index === null ? r : { lr: r.lr, index: r.index + t.offset });
  const suggestion = suggestLr(tc.lrs, tc.losses, cfg);
  const ok = suggestion.lr !== null;
  const scale = p.schedule.resolved.lr.scale;
  const groupRatios = Object.fromEntries(opt.groups.map((g) => [g.name, g.lr / top]));
  return {
    lrs: recorder.lrs,
    losses: recorder.losses,
    smoothed: recorder.smoothed,
    centred,
    plannedSteps: cfg.steps,
    stoppedBy: recorder.stoppedBy,
    suggestion: ok ? (at(suggestion) as Suggestion) : suggestion,
    // fastai's readings always produce a number; where ours says the loss never fell they would only mislead.
    valley: ok ? at(valley(t.lrs, t.losses)) : { lr: null, index: null },
    minimum: ok ? at(minimumOver10(t.lrs, t.losses)) : { lr: null, index: null },
    groupRatios,
    configLr: ok ? suggestion.lr! / scale : null,
    scale,
    config: cfg,
  };
}

/** Human-readable lines for the CLI. */
export function formatLrFind(r: LrFindResult): string[] {
  const f = (v: number | null) => (v === null ? '-' : v.toExponential(2));
  const lines = [`lr-find: ${r.losses.length} of ${r.plannedSteps} steps, ended: ${r.stoppedBy}`];
  if (r.suggestion.lr === null) {
    lines.push(`no suggestion: ${r.suggestion.reason}`);
  } else {
    lines.push(`suggestion (highest rate still clearly decreasing): ${f(r.suggestion.lr)} effective for the top group`);
    lines.push(`  = --lr ${f(r.configLr)} at the reference batch (scale x${r.scale.toPrecision(4)})`);
    lines.push(`fastai valley: ${f(r.valley.lr)}   minimum/10: ${f(r.minimum.lr)}`);
  }
  return lines;
}

/** The plot: raw and smoothed loss against the rate (log x), the readings as vertical markers. */
export function lrFindSvg(r: LrFindResult): string {
  const pts = (ys: number[]) => r.lrs.map((x, i) => [x, ys[i]] as [number, number]);
  const finite = r.smoothed.filter(Number.isFinite);
  const lo = Math.min(...finite);
  const markers = [];
  if (r.suggestion.lr !== null) markers.push({ x: r.suggestion.lr, label: `suggestion ${r.suggestion.lr.toExponential(1)}`, color: '#d62728' });
  if (r.valley.lr !== null) markers.push({ x: r.valley.lr, label: `valley ${r.valley.lr.toExponential(1)}`, color: '#2ca02c' });
  if (r.minimum.lr !== null) markers.push({ x: r.minimum.lr, label: `min/10 ${r.minimum.lr.toExponential(1)}`, color: '#9467bd' });
  return chartSvg({
    title: r.suggestion.lr === null ? 'LR range test: no rate decreased the loss' : 'LR range test',
    xLabel: 'learning rate of the top group (log scale)',
    yLabel: 'training loss',
    xLog: true,
    series: [
      { name: 'loss', points: pts(r.losses), color: '#c7c7c7' },
      { name: 'smoothed loss (EMA 0.98, bias-corrected)', points: pts(r.smoothed), color: '#1f77b4' },
      { name: 'centred mean (suggestion read here)', points: pts(r.centred), color: '#ff7f0e' },
    ],
    markers,
    // the blow-up at the end would squash the interesting part
    yMin: Math.max(0, Math.min(...r.losses.filter(Number.isFinite)) * 0.95),
    yMax: finite.length ? Math.min(Math.max(...finite), r.config.stopFactor * lo) * 1.05 : undefined,
  });
}

/** Writes lr_find.json and lr_find.png into `dir`; returns their paths. */
export async function writeLrFind(r: LrFindResult, dir: string): Promise<{ json: string; png: string }> {
  const json = path.join(dir, 'lr_find.json');
  const png = path.join(dir, 'lr_find.png');
  const clean = (xs: number[]) => xs.map((v) => (Number.isFinite(v) ? v : null));
  writeTextAtomic(json, `${JSON.stringify({ ...r, losses: clean(r.losses), smoothed: clean(r.smoothed), centred: clean(r.centred) }, null, 2)}\n`);
  await writePng(lrFindSvg(r), png);
  return { json, png };
}

/** `layertune lr-find`: prepare the job, sweep, write lr_find.json + lr_find.png to the run folder, free the network. */
export async function lrFind(
  input: JobInput | Record<string, unknown> = {},
  opts: RunOptions & { lrFind?: LrFindInput; write?: boolean } = {},
): Promise<LrFindResult & { files?: { json: string; png: string } }> {
  const p = await prepare(input, opts);
  try {
    const r = await lrRangeTest(p, opts.lrFind ?? {});
    const files = opts.write === false ? undefined : await writeLrFind(r, p.job.out);
    return { ...r, files };
  } finally {
    disposeNetwork(p.network);
  }
}

/**
 * The training report of a run folder: PNG charts (loss, accuracy, each group's rate, each group's update/weight
 * ratio, the confusion matrix) and report.html, built only from what every run writes (metrics.jsonl,
 * summary.json, the export's metadata.json), so it works for any run, finished, stopped or resumed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors';
import { SmoothedLoss } from '../tune/lr-curve';
import type { BatchInfo, EpochInfo } from '../train/callbacks';
import { chartSvg, confusionSvg, writePng, writeTextAtomic, type Series } from './svg';

/** What MetricsLogCallback writes per step and per epoch (src/train/metrics-log.ts), read back. */
export type StepRecord = { type: 'step' } & Pick<BatchInfo, 'epoch' | 'step' | 'loss' | 'accuracy' | 'lrs' | 'updateRatios'>;
export type EpochRecord = { type: 'epoch' } & Pick<EpochInfo, 'epoch' | 'step' | 'train' | 'val' | 'valWeights' | 'seconds' | 'lrs'>;

export interface RunMetrics {
  steps: StepRecord[];
  epochs: EpochRecord[];
  end: { epochs: number; stoppedEarly?: string } | null;
  summary: { val?: { loss: number; accuracy: number; confusion: number[][] }; stoppedEarly?: string | null; guardEvents?: unknown[] } | null;
  classes: string[] | null;
  /** Files the metrics were read from, oldest first. */
  sources: string[];
}

/**
 * Reads a run's metrics. A resumed run keeps the interrupted part in `metrics.until-step-N.jsonl`: those are read
 * first (by N), and a later record of the same step or epoch replaces an earlier one.
 */
export function readRunMetrics(runDir: string): RunMetrics {
  if (!fs.existsSync(runDir) || !fs.statSync(runDir).isDirectory()) throw new DataError(runDir, 'no such run folder');
  const parts = fs
    .readdirSync(runDir)
    .map((f) => ({ f, m: /^metrics\.until-step-(\d+)\.jsonl$/.exec(f) }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]))
    .map((x) => path.join(runDir, x.f));
  const main = path.join(runDir, 'metrics.jsonl');
  if (fs.existsSync(main)) parts.push(main);
  if (!parts.length) throw new DataError(main, 'no metrics.jsonl in this run folder (was it written by layertune train?)');
  const steps = new Map<number, StepRecord>();
  const epochs = new Map<number, EpochRecord>();
  let end: RunMetrics['end'] = null;
  for (const file of parts) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let rec: { type?: string } & Record<string, unknown>;
      try {
        rec = JSON.parse(line);
      } catch {
        // the last line of an interrupted run may be cut short; anything else is damage worth naming
        if (i >= lines.length - 2) return;
        throw new DataError(file, `line ${i + 1} is not JSON`);
      }
      if (rec.type === 'step') steps.set(rec.step as number, rec as unknown as StepRecord);
      else if (rec.type === 'epoch') epochs.set(rec.epoch as number, rec as unknown as EpochRecord);
      else if (rec.type === 'end') end = rec as unknown as RunMetrics['end'];
    });
  }
  const readJson = (f: string) => {
    try {
      return fs.existsSync(f) ? JSON.parse(fs.readFileSync(f, 'utf8')) : null;
    } catch {
      return null;
    }
  };
  const summary = readJson(path.join(runDir, 'summary.json'));
  const exportDir = typeof summary?.export === 'string' ? summary.export : path.join(runDir, 'model');
  const meta = readJson(path.join(exportDir, 'metadata.json')) ?? readJson(path.join(runDir, 'model', 'metadata.json'));
  return {
    steps: [...steps.values()].sort((a, b) => a.step - b.step),
    epochs: [...epochs.values()].sort((a, b) => a.epoch - b.epoch),
    end,
    summary,
    classes: Array.isArray(meta?.labels) ? meta.labels : null,
    sources: parts,
  };
}

/** Every `stride`-th point (and the last), so a long run's charts stay light. */
export function thin<T>(xs: T[], max = 1500): T[] {
  if (xs.length <= max) return xs;
  const stride = Math.ceil(xs.length / max);
  const out = xs.filter((_, i) => i % stride === 0);
  if (out[out.length - 1] !== xs[xs.length - 1]) out.push(xs[xs.length - 1]);
  return out;
}

function groupNames(steps: StepRecord[], key: 'lrs' | 'updateRatios'): string[] {
  const names = new Set<string>();
  for (const s of steps) for (const g of Object.keys(s[key] ?? {})) names.add(g);
  return [...names];
}

/** The chart specs of a run (SVG strings), keyed by file stem. Pure: no files touched. */
export function reportCharts(m: RunMetrics): Record<string, string> {
  const charts: Record<string, string> = {};
  const steps = thin(m.steps);
  // epoch-level points sit at the step that ended the epoch
  const atStep = (e: EpochRecord) => Math.max(0, e.step - 1);
  const ema = new SmoothedLoss(0.9);
  const smoothed = m.steps.map((s) => [s.step, ema.push(s.loss)] as [number, number]);
  const lossSeries: Series[] = [
    { name: 'train loss (per step)', points: steps.map((s) => [s.step, s.loss]), color: '#c7c7c7' },
    { name: 'train loss (EMA 0.9)', points: thin(smoothed), color: '#1f77b4' },
    { name: 'train loss (epoch mean)', points: m.epochs.map((e) => [atStep(e), e.train.loss]), color: '#2ca02c', dashed: true },
    { name: 'validation loss', points: m.epochs.filter((e) => e.val).map((e) => [atStep(e), e.val!.loss]), color: '#d62728' },
  ];
  const finiteLoss = m.steps.map((s) => s.loss).filter(Number.isFinite);
  charts.loss = chartSvg({
    title: 'Loss',
    xLabel: 'optimizer step',
    yLabel: 'cross-entropy',
    series: lossSeries,
    yMin: 0,
    // a spike (or a divergence the guard caught) would flatten everything else
    yMax: finiteLoss.length
      ? Math.min(Math.max(...finiteLoss), 3 * Math.max(...m.epochs.map((e) => Math.max(e.train.loss, e.val?.loss ?? 0)), finiteLoss[0] ?? 0))
      : undefined,
  });
  charts.accuracy = chartSvg({
    title: 'Accuracy',
    xLabel: 'optimizer step',
    yLabel: 'accuracy',
    series: [
      { name: 'train (epoch mean)', points: m.epochs.map((e) => [atStep(e), e.train.accuracy]), color: '#2ca02c' },
      { name: 'validation', points: m.epochs.filter((e) => e.val).map((e) => [atStep(e), e.val!.accuracy]), color: '#d62728' },
    ],
    yMin: 0,
    yMax: 1,
  });
  const lrGroups = groupNames(m.steps, 'lrs');
  charts.lr = chartSvg({
    title: 'Learning rate of each group',
    xLabel: 'optimizer step',
    yLabel: 'learning rate (log scale)',
    yLog: true,
    series: lrGroups.map((g, i) => {
      const points = steps.filter((s) => s.lrs?.[g] !== undefined).map((s) => [s.step, s.lrs[g]] as [number, number]);
      // groups on the same rate draw over each other: say so in the legend rather than lose one
      const twin = lrGroups.slice(0, i).find((h) => steps.every((s) => s.lrs?.[h] === s.lrs?.[g]));
      return { name: twin ? `${g} (= ${twin})` : g, points, dashed: twin !== undefined };
    }),
  });
  const ratioGroups = groupNames(m.steps, 'updateRatios');
  if (ratioGroups.length) {
    const xs = steps.map((s) => s.step);
    const band = (v: number, name: string): Series => ({
      name,
      points: xs.length
        ? [
            [xs[0], v],
            [xs[xs.length - 1], v],
          ]
        : [],
      color: '#999999',
      dashed: true,
    });
    charts.ratio = chartSvg({
      title: 'Update/weight ratio ‖Δw‖/‖w‖ of each group',
      xLabel: 'optimizer step',
      yLabel: 'ratio (log scale)',
      yLog: true,
      series: [
        ...ratioGroups.map((g) => ({
          name: g,
          // 0 means the group did not move (or has zero weights): nothing to draw on a log axis
          points: steps.filter((s) => (s.updateRatios?.[g] ?? 0) > 0).map((s) => [s.step, s.updateRatios![g]] as [number, number]),
        })),
        band(1e-4, 'band low 1e-4'),
        band(1e-2, 'band high 1e-2'),
      ],
    });
  }
  const confusion = m.summary?.val?.confusion;
  if (Array.isArray(confusion) && confusion.length) {
    const classes = m.classes && m.classes.length === confusion.length ? m.classes : confusion.map((_, i) => `class ${i}`);
    charts.confusion = confusionSvg(confusion, classes);
  }
  return charts;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function summaryRows(m: RunMetrics): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  const last = m.epochs[m.epochs.length - 1];
  rows.push(['epochs', String(m.epochs.length)]);
  rows.push(['optimizer steps', String(m.steps.length ? m.steps[m.steps.length - 1].step + 1 : 0)]);
  if (last) rows.push(['final train loss / accuracy', `${last.train.loss.toFixed(4)} / ${last.train.accuracy.toFixed(4)}`]);
  const val = m.summary?.val ?? last?.val;
  // with a weight EMA every validation number is the average's, which the row names
  const onEma = last?.valWeights === 'ema' ? ' (EMA weights)' : '';
  if (val) rows.push([`validation loss / accuracy${onEma}`, `${val.loss.toFixed(4)} / ${val.accuracy.toFixed(4)}`]);
  const bestVal = m.epochs.filter((e) => e.val).sort((a, b) => b.val!.accuracy - a.val!.accuracy)[0];
  if (bestVal) rows.push([`best validation accuracy${onEma}`, `${bestVal.val!.accuracy.toFixed(4)} (epoch ${bestVal.epoch + 1})`]);
  const stopped = m.summary?.stoppedEarly ?? m.end?.stoppedEarly;
  if (stopped) rows.push(['stopped early', stopped]);
  if (m.summary?.guardEvents?.length) rows.push(['divergences recovered', String(m.summary.guardEvents.length)]);
  const secs = m.epochs.reduce((s, e) => s + (e.seconds ?? 0), 0);
  rows.push(['training time', `${secs.toFixed(1)} s`]);
  if (m.classes) rows.push(['classes', m.classes.join(', ')]);
  return rows;
}

/** report.html around the PNGs (relative links, so the folder can be moved or served as is). */
export function reportHtml(runDir: string, m: RunMetrics, pngs: Record<string, string>): string {
  const captions: Record<string, string> = {
    loss: 'Training loss per step (grey), its moving average (blue), epoch means and validation loss.',
    accuracy: 'Training and validation accuracy per epoch.',
    lr: 'Effective learning rate of each parameter group: warmup, decay and plateau drops appear here.',
    ratio: 'Update/weight ratio per group; about 1e-3 is healthy, the dashed lines mark 1e-4 and 1e-2.',
    confusion: 'Validation confusion matrix: rows are the true class, columns the prediction; shade = share of the row.',
  };
  const figs = Object.entries(pngs)
    .map(([k, f]) => `<figure><img src="${esc(path.basename(f))}" alt="${k}"><figcaption>${esc(captions[k] ?? k)}</figcaption></figure>`)
    .join('\n');
  const rows = summaryRows(m)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>layertune report: ${esc(path.basename(path.resolve(runDir)))}</title>
<style>
body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222;max-width:1520px}
h1{font-size:22px;margin:0 0 12px} table{border-collapse:collapse;margin-bottom:18px}
th,td{padding:4px 12px;border-bottom:1px solid #ddd;text-align:left;font-size:14px} th{color:#555;font-weight:normal}
.grid{display:flex;flex-wrap:wrap;gap:16px} figure{margin:0;border:1px solid #ddd;padding:8px;background:#fff}
figure img{display:block;max-width:720px;width:100%} figcaption{font-size:12px;color:#555;max-width:720px;margin-top:4px}
</style></head><body>
<h1>Training report: ${esc(path.resolve(runDir))}</h1>
<table>${rows}</table>
<div class="grid">
${figs}
</div>
<p style="font-size:12px;color:#777">Built from ${m.sources.map((s) => esc(path.basename(s))).join(', ')}${m.summary ? ' and summary.json' : ''} by layertune.</p>
</body></html>
`;
}

/** Writes `<run>/report.html` and its PNG charts; returns the paths. */
export async function writeReport(runDir: string): Promise<{ html: string; charts: Record<string, string> }> {
  const m = readRunMetrics(runDir);
  const svgs = reportCharts(m);
  const charts: Record<string, string> = {};
  for (const [name, svg] of Object.entries(svgs)) {
    const file = path.join(runDir, `chart_${name}.png`);
    await writePng(svg, file);
    charts[name] = file;
  }
  const html = path.join(runDir, 'report.html');
  writeTextAtomic(html, reportHtml(runDir, m, charts));
  return { html, charts };
}

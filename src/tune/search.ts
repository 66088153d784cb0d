/**
 * Hyper-parameter search: random (log-uniform) or 3x-grid trials, optional stratified k-fold cross-validation,
 * median stopping, one JSON file per finished trial (so a rerun skips them and parallel workers share them),
 * then a results table, the best config as a job file and a scatter plot per hyper-parameter.
 * Every trial trains through prepare() and the Trainer, with the data stage replaced by a fold view.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { prepare, type RunOptions } from '../job';
import type { Container } from 'inversify';
import { createContainer, stagesOf, TOKENS, type DataSourceFactory } from '../container';
import type { ModelSource } from '../models/source';
import { mergeConfig, readJobFile, resolveJob } from '../config/load';
import type { Job } from '../config/schema';
import type { JobInput } from '../config/schema';
import type { DataSource } from '../data/source';
import { stratifiedFolds } from '../data/split';
import { ConfigError, TrainingError } from '../errors';
import { parseOrThrow } from '../optim/schema';
import { CALLBACK_ORDER, CancelFit, type Callback, type EpochInfo } from '../train/callbacks';
import type { LrPolicy } from '../train/trainer';
import { scaleFactor } from '../schedules/scaling';
import { clampBatchToData } from '../train/batch-fit';
import { chartSvg, writePng, writeTextAtomic } from '../report/svg';
import { SearchSchema, type SearchConfig, type SearchInput } from './schema';
import { PARAMS, describeTrial, gridTrials, randomTrials, trialToJob, validateSpace, type TrialParams } from './space';
import { medianStop } from './median-stop';
import { CachedModelSource, SplitDataView, disposeHead } from './parts';

export type TrialStatus = 'done' | 'pruned' | 'diverged';

export interface TrialRecord {
  id: number;
  /** Hash of everything that decides the trial's outcome: a rerun reuses the record only when it matches. */
  key: string;
  params: TrialParams;
  status: TrialStatus;
  /** Mean over folds of the final epoch's metric, higher is better (a loss enters negated); null when diverged. */
  score: number | null;
  foldScores: number[];
  valAccuracy: number | null;
  valLoss: number | null;
  /** Per-epoch scores of the first fold (what median stopping compares). */
  curve: number[];
  epochs: number;
  seconds: number;
  message?: string;
}

export interface SearchOptions extends RunOptions {
  /** Folder for trials/, results.{csv,json}, best.yaml and the plots. */
  out: string;
  search?: SearchInput;
  /** Run only trials with id % count === index (one parallel worker's share). */
  shard?: { index: number; count: number };
}

export interface SearchResult {
  config: SearchConfig;
  trials: TrialRecord[];
  /** Finished (not pruned, not diverged) trials, best first. */
  ranking: TrialRecord[];
  best: TrialRecord | null;
  /** Trials skipped because a matching record already existed. */
  resumed: number;
  files: Record<string, string>;
}

/** Trial list for a config: random draws, or the full 3x grid (refused when larger than `trials`). */
export function planTrials(cfg: SearchConfig): TrialParams[] {
  validateSpace(cfg.space);
  if (cfg.method === 'random') return randomTrials(cfg.space, cfg.trials, cfg.seed);
  const grid = gridTrials(cfg.space);
  if (grid.length > cfg.trials) {
    throw new ConfigError(
      'tune.search.trials',
      `the 3x grid over this space has ${grid.length} points but trials is ${cfg.trials}: raise trials or narrow/remove ranges (a null range is not searched)`,
    );
  }
  return grid;
}

/** k stratified views of one source (train = the other folds, val = fold i); one view of its own split when k = 1. */
export function foldViews(base: DataSource, k: number, seed: number): DataSource[] {
  if (k <= 1) return [base];
  const all = [...base.train, ...base.val].map((e) => ({ file: e.key, label: e.label }));
  for (let c = 0; c < base.classes.length; c++) {
    const n = all.filter((f) => f.label === c).length;
    if (n < k) throw new ConfigError('tune.search.folds', `class "${base.classes[c]}" has ${n} image(s), fewer than ${k} folds`);
  }
  const folds = stratifiedFolds(all, k, seed);
  const ex = (fs: typeof all) => fs.map((f) => ({ key: f.file, label: f.label }));
  return folds.map((val, i) => new SplitDataView(base, ex(folds.filter((_, j) => j !== i).flat()), ex(val)));
}

const scoreOf = (metric: SearchConfig['metric'], v: { loss: number; accuracy: number }) => (metric === 'val_loss' ? -v.loss : v.accuracy);

function trialKey(params: TrialParams, job: unknown, cfg: SearchConfig): string {
  const h = crypto.createHash('sha1');
  h.update(JSON.stringify({ params, job, folds: cfg.folds, metric: cfg.metric, seed: cfg.seed, medianStop: cfg.medianStop }));
  return h.digest('hex').slice(0, 16);
}

const trialFile = (out: string, id: number) => path.join(out, 'trials', `trial-${String(id).padStart(4, '0')}.json`);

/** Finished trial records on disk (every worker's), by id. */
export function readTrials(out: string): Map<number, TrialRecord> {
  const dir = path.join(out, 'trials');
  const m = new Map<number, TrialRecord>();
  if (!fs.existsSync(dir)) return m;
  for (const f of fs.readdirSync(dir)) {
    if (!/^trial-\d+\.json$/.test(f)) continue;
    try {
      const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as TrialRecord;
      m.set(r.id, r);
    } catch {
      // a record being written by another worker appears under its final name only after the rename
    }
  }
  return m;
}

/** Median stopping as a callback on the first fold: compares with the curves of trials finished so far (all workers). */
class MedianStopCallback implements Callback {
  readonly name = 'median stopping';
  readonly order = CALLBACK_ORDER.medianStop;
  readonly curve: number[] = [];
  pruned: { median: number; best: number; epoch: number } | null = null;
  constructor(
    private readonly cfg: SearchConfig,
    private readonly finished: () => number[][] | Promise<number[][]>,
  ) {}
  async afterEpoch(e: EpochInfo): Promise<void> {
    if (!e.val) return;
    this.curve.push(scoreOf(this.cfg.metric, e.val));
    if (!this.cfg.medianStop) return;
    const d = medianStop(this.curve, await this.finished(), { minTrials: this.cfg.medianMinTrials, graceEpochs: this.cfg.medianGraceEpochs });
    if (d) {
      this.pruned = { ...d, epoch: e.epoch };
      throw new CancelFit(`median stopping: best ${d.best.toFixed(4)} < median ${d.median.toFixed(4)} at epoch ${e.epoch + 1}`);
    }
  }
}

/**
 * A trial's pipeline: the search's container (with whatever the caller rebound) as parent, the model source
 * replaced by the shared cache and the data source by the fold's view.
 */
function trialContainer(parent: Container, models: ModelSource, view: DataSource): Container {
  const c = parent.createChild();
  c.bind<ModelSource>(TOKENS.ModelSource).toConstantValue(models);
  c.bind<DataSourceFactory>(TOKENS.DataSource).toConstantValue({ create: () => view });
  return c;
}

/** The search's persistent description: what workers read, and what a rerun must match. */
interface SearchManifest {
  base: Record<string, unknown>;
  search: SearchConfig;
  /** Reference-to-effective rate factor of the base job: groups.top = lr / lrScale. */
  lrScale: number;
}

/**
 * Reference-to-effective rate factor for a job training on `trainImages` images: linear (or sqrt) scaling of the
 * batch × accumulate left after the clamp to the data that `train` applies (clampBatchToData), so a trial's top
 * group trains at exactly the searched rate. The memory fit keeps batch × accumulate, so it does not enter.
 */
export function searchLrScale(job: Job, trainImages: number): number {
  const { batch, accumulate } = clampBatchToData(job.train.batch, job.train.accumulate, trainImages);
  return scaleFactor(job.lr.scaling, batch * accumulate, job.lr.baseBatch);
}

/** A search resolved from its inputs: what the local loop and the queue (src/queue) both plan from. */
export interface PlannedSearch {
  base: Record<string, unknown>;
  cfg: SearchConfig;
  trials: TrialParams[];
  lrScale: number;
  job0: Job;
  container: Container;
  views: DataSource[];
}

/** Resolves and validates a search: the base job, its tune.search section with the call's settings over it, the trials, the fold views. */
export function planSearch(input: JobInput | Record<string, unknown>, opts: Pick<SearchOptions, 'configFile' | 'search' | 'container'>): PlannedSearch {
  const base = opts.configFile ? mergeConfig(readJobFile(opts.configFile), input as Record<string, unknown>) : (input as Record<string, unknown>);
  // the job's tune.search section, then the call's own settings over it
  const cfg = parseOrThrow(SearchSchema, mergeConfig(resolveJob(base).tune.search, (opts.search ?? {}) as Record<string, unknown>), 'tune.search');
  const trials = planTrials(cfg);
  // validate the base job and that the searched fields exist in its grouping strategy
  const job0 = resolveJob(mergeConfig(base, trialToJob(trials[0])));
  if (job0.groups.strategy !== 'stepped' && (cfg.space.lr || cfg.space.factor)) {
    throw new ConfigError('groups.strategy', `search sets groups.top and groups.factor, which need the stepped strategy (got ${job0.groups.strategy})`);
  }
  const container = opts.container ?? createContainer();
  const source = stagesOf(container).data.create(job0);
  const views = foldViews(source, cfg.folds, job0.data.splitSeed);
  // searched rates are effective ones (at the batch a trial really runs); the config holds them at the reference batch
  const lrScale = searchLrScale(job0, Math.min(...views.map((v) => v.train.length)));
  return { base, cfg, trials, lrScale, job0, container, views };
}

/** The record key of trial `t`: a rerun (local or on the queue) reuses a record only when it matches. */
export function trialKeyOf(plan: PlannedSearch, t: TrialParams): string {
  const trialJob = mergeConfig(plan.base, trialToJob(t, plan.lrScale));
  // where the run writes, and the tuning settings themselves (trial count...), do not change a trial's outcome
  return trialKey(t, { ...resolveJob(trialJob), out: null, export: null, tune: null }, plan.cfg);
}

/** What the trials of one search in one process share: the cached model, and where median stopping reads peers. */
export interface TrialContext {
  plan: PlannedSearch;
  models: CachedModelSource;
  /** Per-epoch curves of the finished trials median stopping compares with (every worker's). */
  finished: () => number[][] | Promise<number[][]>;
  dispose(): void;
}

export function trialContext(plan: PlannedSearch, finished: TrialContext['finished']): TrialContext {
  const models = new CachedModelSource(stagesOf(plan.container).modelSource);
  return { plan, models, finished, dispose: () => models.dispose() };
}

/**
 * Trains one trial over every fold and returns its record (diverged is a record, not an error). `callbacks` join
 * every fold's loop (the queue's step timer); they must not change what is trained.
 */
export async function runTrial(ctx: TrialContext, t: TrialParams, id: number, callbacks: readonly Callback[] = []): Promise<TrialRecord> {
  const { plan } = ctx;
  const cfg = plan.cfg;
  const quiet = () => {};
  const trialJob = mergeConfig(plan.base, trialToJob(t, plan.lrScale));
  const t0 = Date.now();
  const rec: TrialRecord = {
    id,
    key: trialKeyOf(plan, t),
    params: t,
    status: 'done',
    score: null,
    foldScores: [],
    valAccuracy: null,
    valLoss: null,
    curve: [],
    epochs: 0,
    seconds: 0,
  };
  const accs: number[] = [];
  const losses: number[] = [];
  for (let f = 0; f < plan.views.length; f++) {
    const view = plan.views[f];
    const p = await prepare(trialJob, { container: trialContainer(plan.container, ctx.models, view), log: quiet });
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const policy: LrPolicy = {
      factor: (s, e) => p.schedule.factor(s, e),
      epochEnd: (e, metrics) => {
        const d = p.schedule.onEpochEnd(e, metrics);
        return { stop: d.stop, reason: d.reason };
      },
    };
    const median = new MedianStopCallback(cfg, ctx.finished);
    const trainer = p.stages.trainer.create(p, {
      optimizer: opt,
      lr: policy,
      callbacks: f === 0 ? [median, ...callbacks] : [...callbacks],
      spillDir: null,
      monitorNorms: false,
    });
    try {
      const fit = await trainer.fit();
      rec.epochs = Math.max(rec.epochs, fit.epochs);
      if (f === 0) rec.curve = median.curve;
      const last = fit.history[fit.history.length - 1]?.val;
      if (median.pruned) {
        rec.status = 'pruned';
        rec.message = fit.stoppedEarly;
        if (last) {
          rec.foldScores.push(scoreOf(cfg.metric, last));
          accs.push(last.accuracy);
          losses.push(last.loss);
        }
        break;
      }
      if (!last) throw new ConfigError('tune.search.folds', 'a trial needs validation images: use folds >= 2 or a data split with val images');
      rec.foldScores.push(scoreOf(cfg.metric, last));
      accs.push(last.accuracy);
      losses.push(last.loss);
    } catch (e) {
      if (!(e instanceof TrainingError)) throw e;
      rec.status = 'diverged';
      rec.message = e.message;
      break;
    } finally {
      opt.dispose();
      disposeHead(p.network);
    }
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  rec.score = rec.status === 'diverged' ? null : mean(rec.foldScores);
  rec.valAccuracy = mean(accs);
  rec.valLoss = mean(losses);
  rec.seconds = (Date.now() - t0) / 1000;
  return rec;
}

/** Writes a finished trial's record where reruns and other workers find it (atomic). */
export function writeTrial(out: string, rec: TrialRecord): void {
  fs.mkdirSync(path.join(out, 'trials'), { recursive: true });
  writeTextAtomic(trialFile(out, rec.id), `${JSON.stringify(rec, null, 2)}\n`);
}

/** The line a finished trial prints. */
export function formatTrial(cfg: SearchConfig, total: number, rec: TrialRecord): string {
  return (
    `trial ${rec.id + 1}/${total} ${describeTrial(rec.params)}: ${rec.status}` +
    (rec.score !== null ? `, ${cfg.metric} ${fmtScore(cfg, rec.score)} over ${rec.foldScores.length} fold(s)` : '') +
    ` (${rec.seconds.toFixed(1)} s)`
  );
}

/** Writes search.json: the search's persistent description, what workers read and what a rerun must match. */
export function writeManifest(out: string, plan: PlannedSearch): void {
  fs.mkdirSync(path.join(out, 'trials'), { recursive: true });
  const manifest: SearchManifest = { base: plan.base, search: plan.cfg, lrScale: plan.lrScale };
  writeTextAtomic(path.join(out, 'search.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

/** Records of `plan`'s trials found in `all`, in trial order, and their ranking (finished ones, best first). */
export function summarise(plan: PlannedSearch, all: Map<number, TrialRecord>, resumed: number): SearchResult {
  const records = plan.trials.map((_, id) => all.get(id)).filter((r): r is TrialRecord => r !== undefined);
  const ranking = records.filter((r) => r.status === 'done' && r.score !== null).sort((a, b) => b.score! - a.score!);
  return { config: plan.cfg, trials: records, ranking, best: ranking[0] ?? null, resumed, files: {} };
}

/**
 * Runs (or resumes) a search. `input` is the base job (data, model, epochs...); each trial overrides lr,
 * weight decay, momentum and group spread. With `shard`, runs only that worker's trials and skips the summary.
 */
export async function search(input: JobInput | Record<string, unknown>, opts: SearchOptions): Promise<SearchResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const plan = planSearch(input, opts);
  const { cfg, trials } = plan;
  writeManifest(opts.out, plan);
  const finished = () => [...readTrials(opts.out).values()].filter((r) => r.status === 'done').map((r) => r.curve);
  const ctx = trialContext(plan, finished);
  const mine = trials.map((t, id) => ({ t, id })).filter(({ id }) => !opts.shard || id % opts.shard.count === opts.shard.index);
  let resumed = 0;
  try {
    for (const { t, id } of mine) {
      const existing = readTrials(opts.out).get(id);
      if (existing && existing.key === trialKeyOf(plan, t)) {
        resumed++;
        continue;
      }
      const rec = await runTrial(ctx, t, id);
      writeTrial(opts.out, rec);
      log(formatTrial(cfg, trials.length, rec));
    }
  } finally {
    ctx.dispose();
  }
  const result = summarise(plan, readTrials(opts.out), resumed);
  if (opts.shard) return result;
  result.files = await writeSearchResults(result, plan.base, opts.out, plan.lrScale);
  return result;
}

const fmtScore = (cfg: SearchConfig, s: number) => (cfg.metric === 'val_loss' ? (-s).toFixed(4) : s.toFixed(4));

/** results.csv, results.json, best.yaml and one scatter plot per searched hyper-parameter. */
export async function writeSearchResults(r: SearchResult, base: Record<string, unknown>, out: string, lrScale = 1): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  const searched = PARAMS.filter((p) => r.trials.some((t) => t.params[p] !== undefined));
  const header = [
    'trial',
    'status',
    ...searched.map((p) => (p === 'lr' ? 'lr_effective' : p)),
    'score',
    'score_std',
    'val_accuracy',
    'val_loss',
    'folds',
    'epochs',
    'seconds',
  ];
  const std = (xs: number[]) => {
    if (xs.length < 2) return 0;
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
  };
  const rows = r.trials.map((t) => [
    t.id + 1,
    t.status,
    ...searched.map((p) => t.params[p] ?? ''),
    t.score ?? '',
    t.foldScores.length ? std(t.foldScores) : '',
    t.valAccuracy ?? '',
    t.valLoss ?? '',
    t.foldScores.length,
    t.epochs,
    t.seconds.toFixed(1),
  ]);
  files.csv = path.join(out, 'results.csv');
  writeTextAtomic(files.csv, `${[header, ...rows].map((row) => row.join(',')).join('\n')}\n`);
  files.json = path.join(out, 'results.json');
  writeTextAtomic(files.json, `${JSON.stringify({ config: r.config, best: r.best, ranking: r.ranking.map((t) => t.id + 1), trials: r.trials }, null, 2)}\n`);
  if (r.best) {
    files.best = path.join(out, 'best.yaml');
    const job = mergeConfig(base, trialToJob(r.best.params, lrScale));
    const doc =
      `# Best of ${r.trials.length} trials (${r.config.method}, ${r.config.folds} fold(s)): trial ${r.best.id + 1}, ` +
      `${r.config.metric} ${fmtScore(r.config, r.best.score!)}\n# ${describeTrial(r.best.params)} (lr: the top group's effective rate; groups.top = lr / ${+lrScale.toPrecision(6)})\n# Train it: layertune train --config ${files.best}\n` +
      YAML.stringify(job);
    writeTextAtomic(files.best, doc);
  }
  const done = r.trials.filter((t) => t.score !== null);
  for (const p of searched) {
    const xOf = (t: TrialRecord) => (p === 'momentum' ? 1 - (t.params.momentum as number) : (t.params[p] as number));
    const series = (['done', 'pruned'] as const).map((status) => ({
      name: status === 'done' ? 'finished trials' : 'cut by median stopping (score when cut)',
      kind: 'scatter' as const,
      color: status === 'done' ? '#1f77b4' : '#aaaaaa',
      points: done.filter((t) => t.status === status).map((t) => [xOf(t), t.score!] as [number, number]),
    }));
    const file = path.join(out, `scatter_${p}.png`);
    await writePng(
      chartSvg({
        title: `${r.config.metric} against ${p === 'momentum' ? '1 − momentum' : p === 'lr' ? "the top group's rate" : p}`,
        xLabel: `${p === 'momentum' ? '1 − momentum' : p === 'lr' ? 'effective lr of the top group' : p}${p === 'factor' && r.config.space.factor?.scale === 'linear' ? '' : ' (log scale)'}`,
        yLabel: r.config.metric === 'val_loss' ? '− validation loss' : 'validation accuracy',
        xLog: !(p === 'factor' && r.config.space.factor?.scale === 'linear'),
        series,
        markers: r.best ? [{ x: xOf(r.best), label: 'best', color: '#d62728' }] : [],
      }),
      file,
    );
    files[`scatter_${p}`] = file;
  }
  return files;
}

/** One line per trial, best first (CLI summary). */
export function formatSearch(r: SearchResult): string[] {
  const lines = [
    `${r.trials.length} trial(s): ${r.ranking.length} finished, ${r.trials.filter((t) => t.status === 'pruned').length} cut by median stopping, ${r.trials.filter((t) => t.status === 'diverged').length} diverged; ${r.resumed} reused from an earlier run`,
  ];
  for (const t of r.ranking.slice(0, 5)) lines.push(`  #${t.id + 1} ${describeTrial(t.params)}: ${fmtScore(r.config, t.score!)}`);
  if (r.best) lines.push(`best config: ${r.files.best ?? '(not written)'}`);
  else lines.push('no trial finished: no best config');
  return lines;
}

import * as path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Container } from 'inversify';
import { bindJob, boundCallbacks, boundStateful, createContainer, stagesOf, type Stages } from './container';
import { mergeConfig, readJobFile, resolveJob } from './config/load';
import type { Job, JobInput } from './config/schema';
import { ConfigError } from './errors';
import { describeChoice, type BackendChoice } from './engine/backend';
import { resolveThreads } from './engine/threads';
import { trainedMultiplyAdds } from './models/macs';
import { ensureWritableDir, writeFileAtomic } from './export/atomic';
import { topOneAccuracy } from './export/accuracy';
import { checkOwnFolder, markFolder } from './io/run-folder';
import { acquireLock } from './io/lock';
import { checkHeadOnly } from './models/graph-source';
import { attachHead, applyBatchNormModes, HEAD_LAYERS, prefixOutputBytes, type Network } from './models/network';
import { describeLayers, type GroupPlan } from './groups';
import { flatLayers, namedVariables } from './optim/named';
import type { LrSchedule } from './schedules/controller';
import { resolveMode } from './schedules/early-stopping';
import type { FitResult, LrPolicy, Trainer } from './train/trainer';
import { InterruptOnSignal } from './train/signals';
import type { RunContext } from './train/run-callbacks';
import type { Callback } from './train/callbacks';
import { describeFineTune, FineTune, planFineTune, type FineTunePlan } from './train/fine-tune';
import { planLrWdWarnings } from './tune/rules';
import { writeReport } from './report/report';
import { type CacheSize, frozenPrefixRule } from './data/cached-views';
import { describeAugment } from './data/augment';
import { chooseAugment } from './data/augment-rule';
import { classCounts, imbalanceWarning } from './data/balance';
import { checkPresize, describeJobInputs } from './data/presize';
import type { DataSource } from './data/source';
import { loadCheckpoint } from './train/checkpoint/store';
import { BestTracker, EarlyStoppingJudge, TrackerJudge, type BestJudge } from './train/checkpoint/best';
import { EarlyStoppingCallback, epochMetrics, metricsWithTrainAsVal, type MetricsOf } from './train/early-stopping';
import { planResume, type ResumePlan } from './train/checkpoint/resume';
import { formatChanges } from './config/diff';
import { joinMetrics, setAsideMetrics } from './train/checkpoint/resume-metrics';
import { modelWeights } from './schedules/weights';
import { StateRegistry } from './stateful';
import { fitBatch } from './train/batch-fit';
import { countModel, memoryBudget } from './train/memory-estimate';
import { RULES } from './optim/algorithms';
import { checkProvenance, runProvenance } from './train/checkpoint/provenance';
import { packageVersion } from './package-root';
import { checkEveryClassDecodes } from './data/class-probe';
import { disposeNetwork } from './tune/parts';
import { WeightEma } from './train/ema';

export interface RunOptions {
  /** Turn SIGINT/SIGTERM during training into a checkpointed stop with a resume hint (the CLI sets it). */
  handleSignals?: boolean;
  /** A YAML/JSON job file; `input` overrides it field by field. */
  configFile?: string;
  /**
   * The pipeline to run: `createContainer(job)` with any stage rebound and callbacks bound to
   * `TOKENS.Callback`. Its JobConfig is rebound to the job this run resolves. Rebinding is the one way to
   * replace a stage.
   */
  container?: Container;
  /** Extra callbacks around the loop. */
  callbacks?: Callback[];
  log?: (line: string) => void;
  /**
   * Continue the run in this folder from its latest checkpoint. `input` and `configFile` then override the
   * checkpoint's job; a resulting change is refused unless `force`.
   */
  resume?: string;
  force?: boolean;
  /** Write report.html and the PNG charts into the run folder after training (default true). */
  report?: boolean;
}

export interface JobResult {
  job: Job;
  backend: BackendChoice;
  network: Network;
  plan: GroupPlan;
  fit: FitResult;
  val?: { loss: number; accuracy: number; confusion: number[][] };
  exportDir: string;
  skipped: DataSource['skipped'];
  cachedStages: number;
  /** The checkpoint folder the run continued from. */
  resumedFrom?: string;
}

/** Everything a training run needs, built but not run: shared by train, plan, lr-find and search. */
export interface Prepared {
  job: Job;
  container: Container;
  /** The container's stages, resolved once for this run. */
  stages: Stages;
  backend: BackendChoice;
  data: DataSource;
  network: Network;
  plan: GroupPlan;
  cachedStages: number;
  trainableVars: Record<string, tf.Variable>;
  /** Forward passes per epoch (ceil(train images / batch)). */
  batchesPerEpoch: number;
  /** Optimizer steps per epoch: batchesPerEpoch / train.accumulate, rounded up. */
  stepsPerEpoch: number;
  /** warmup ∘ schedule ∘ plateau, resolved against this run's effective batch and length. */
  schedule: LrSchedule;
  /** Why the training transforms are what they are (src/data/augment-rule.ts). */
  augmentRule: string;
}

/** Optimizer steps per epoch when `accumulate` batches of `batch` images make one step. */
export function stepsPerEpochOf(trainImages: number, batch: number, accumulate: number): number {
  return Math.ceil(Math.ceil(trainImages / batch) / accumulate);
}

export async function prepare(input: JobInput | Record<string, unknown> = {}, opts: RunOptions = {}): Promise<Prepared> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const job = resolveJob(input, opts.configFile, log);
  const container = opts.container ?? createContainer(job);
  bindJob(container, job);
  const stages = stagesOf(container);
  const backend = await stages.backend.select(job.backend);
  log(describeChoice(backend));
  const data = stages.data.create(job);
  // the augmentation rule below reads these counts, so they print first
  log(`data: ${data.classes.length} classes (${data.classes.join(', ')}), ${data.train.length} train / ${data.val.length} val images`);
  for (const w of data.warnings) log(`warning: ${w}`);
  const augmentChoice = chooseAugment(job.data.augment, job.data.flip, data.train.length / Math.max(1, data.classes.length), job.train.epochs);
  job.data.augment = augmentChoice.augment;
  log(`augment: ${describeAugment(job)} (${augmentChoice.why})`);
  const imbalance = job.data.balance === 'none' ? imbalanceWarning(data.classes, classCounts(data.train, data.classes.length)) : null;
  if (imbalance) log(`warning: ${imbalance}`);
  const backbone = await stages.modelSource.load({ source: job.model.source, size: job.model.size });
  try {
    const w = checkPresize(job.data.presize, backbone.inputSize, job.data.augment.randomResizedCrop !== undefined);
    if (w) log(`warning: ${w}`);
  } catch (e) {
    // refused before anything else holds the backbone: release its variables (layer counts are not reliable here)
    for (const w of new Set(flatLayers(backbone.model).flatMap((l) => l.weights))) w.dispose();
    throw e;
  }
  // a GraphModel trains head-only: refuse plainly a grouping that asks to fine-tune it
  checkHeadOnly(backbone, mergeConfig(opts.configFile ? readJobFile(opts.configFile) : {}, input as Record<string, unknown>).groups);
  const network = attachHead(backbone, data.classes, { dropout: job.model.dropout, seed: job.train.seed });
  const layers = describeLayers(network.train, (name) => network.stageOf.get(name) ?? 0, new Set<string>(HEAD_LAYERS));
  const plan = stages.grouper.plan(layers, job);
  for (const w of plan.warnings) log(`warning: ${w.path}: ${w.message}`);
  const frozen = new Set(plan.frozen);
  const all = namedVariables(network.train);
  const trainableVars = Object.fromEntries(Object.entries(all).filter(([k]) => !frozen.has(k)));
  // Leading stages whose every variable is frozen are computed once per image and cached.
  let cachedStages = 0;
  for (let s = 0; s < backbone.stages.length; s++) {
    const stageVars = layers.filter((l) => !l.isHead && l.stage === s).flatMap((l) => l.variables.map((v) => v.name));
    if (stageVars.some((v) => !frozen.has(v))) break;
    cachedStages = s + 1;
  }
  const frozenLayers = new Set(layers.filter((l) => l.variables.length > 0 && l.variables.every((v) => frozen.has(v.name))).map((l) => l.name));
  applyBatchNormModes(network, job.model.batchNorm, frozenLayers, job.model.bnMomentum);
  const fit = fitBatch({
    batch: job.train.batch,
    accumulate: job.train.accumulate,
    trainImages: data.train.length,
    model: countModel(
      network.train,
      Object.values(trainableVars).reduce((a, v) => a + v.size, 0),
    ),
    optimizerSlots: RULES[job.optimizer.algorithm].slots.length,
    size: network.backbone.inputSize,
    budget: memoryBudget(backend.tfBackend),
  });
  for (const w of fit.warnings) log(`warning: ${w}`);
  Object.assign(job.train, { batch: fit.batch, accumulate: fit.accumulate });
  const { batch, accumulate, epochs } = job.train;
  const batchesPerEpoch = Math.ceil(data.train.length / batch);
  const stepsPerEpoch = stepsPerEpochOf(data.train.length, batch, accumulate);
  // the effective batch (batch × accumulate) is what linear scaling and the warmup default read
  const schedule = stages.schedule.create(job, { batch, accumulate, stepsPerEpoch, epochs });
  return {
    job,
    container,
    stages,
    backend,
    data,
    network,
    plan,
    cachedStages,
    trainableVars,
    batchesPerEpoch,
    stepsPerEpoch,
    schedule,
    augmentRule: augmentChoice.why,
  };
}

/** What the frozen prefix's cache will hold, for the line that says whether it fits in train.featureCacheMB. */
export function prefixCacheSize(p: Pick<Prepared, 'network' | 'cachedStages' | 'data' | 'job'>): CacheSize {
  return {
    entryBytes: prefixOutputBytes(p.network, p.cachedStages),
    trainImages: p.data.train.length,
    valImages: p.data.val.length,
    budgetMB: p.job.train.featureCacheMB,
  };
}

/** The job input a run executes and records in its checkpoints: the file (if any) with the options on top. */
function mergedInput(input: JobInput | Record<string, unknown>, configFile?: string): Record<string, unknown> {
  return mergeConfig(configFile ? readJobFile(configFile) : {}, input as Record<string, unknown>);
}

/** `best` follows early stopping when it is on (so it is what restoreBestWeights puts back), else its own metric. */
function bestJudge(job: Job, hasVal: boolean, es: EarlyStoppingCallback | null, metricsOf: MetricsOf): BestJudge {
  const cfg = job.checkpoint;
  if (es && job.earlyStopping) {
    const { monitor, mode } = job.earlyStopping;
    if (cfg.monitor !== undefined && cfg.monitor !== monitor) {
      throw new ConfigError(
        'checkpoint.monitor',
        `"${cfg.monitor}" differs from earlyStopping.monitor "${monitor}": with early stopping on, the best checkpoint follows its monitor`,
      );
    }
    return new EarlyStoppingJudge(es, monitor, resolveMode(mode, monitor), metricsOf);
  }
  const monitor = cfg.monitor ?? (hasVal ? 'val_loss' : 'loss');
  return new TrackerJudge(new BestTracker(BestTracker.initial(monitor, resolveMode(cfg.mode, monitor))), metricsOf);
}

/** Fine-tunes a pretrained backbone on an image folder and exports it: what `layertune train` runs. */
export async function runJob(input: JobInput | Record<string, unknown> = {}, opts: RunOptions = {}): Promise<JobResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  let resume: ResumePlan | null = null;
  let jobInput: Record<string, unknown>;
  if (opts.resume) {
    resume = planResume(opts.resume, input as Record<string, unknown>, opts.configFile, opts.force ?? false);
    jobInput = resume.input;
    log(`resuming ${resume.dir}: ${resume.epoch} epoch(s), ${resume.step} step(s) done`);
    if (resume.changes.length)
      log(`warning: resuming with a changed config (--force): ${formatChanges(resume.changes)}; the result is not the run that was started`);
  } else {
    jobInput = mergedInput(input, opts.configFile);
  }
  // validated with the file's name in error paths when there is a file
  const job0 = resume ? resolveJob(jobInput) : resolveJob(input, opts.configFile);
  const exportDir = job0.export.dir ?? path.join(job0.out, 'model');
  checkOwnFolder(job0.out, 'out', { force: opts.force, dataDir: job0.data.dir });
  checkOwnFolder(exportDir, 'export', { force: opts.force, dataDir: job0.data.dir });
  ensureWritableDir(job0.out);
  markFolder(job0.out);
  ensureWritableDir(path.dirname(path.resolve(exportDir)), 'export');
  const releaseLock = acquireLock(job0.out, log);
  try {
    return await runLocked(input, opts, log, resume, jobInput, exportDir);
  } finally {
    releaseLock();
  }
}

/**
 * The lines a run starts with after the data line: how the rates scale, each group's first rate (a two-phase run
 * prints its phases' own lines instead), the thread count and the frozen prefix, and the rule-of-thumb warnings.
 */
function logRunPlan(p: Prepared, twoPhase: boolean, log: (s: string) => void): void {
  const { job, schedule, network } = p;
  const r = schedule.resolved.lr;
  log(
    `lr: rates are defined at batch ${r.baseBatch} and scaled ${r.scaling} to batch ${r.effectiveBatch}` +
      (job.train.accumulate > 1 ? ` (${job.train.batch} × ${job.train.accumulate} accumulated)` : '') +
      ` (x${r.scale.toPrecision(4)})` +
      (r.warmup.steps > 0 ? `, ${r.warmup.type} warmup over ${r.warmup.steps} steps` : ''),
  );
  // a two-phase run's first rates are the frozen phase's, which its own lines below give
  for (const g of twoPhase ? [] : p.plan.groups) {
    log(
      `  group ${g.name}: lr ${(g.lr * schedule.factor(0, 0)).toPrecision(4)} (configured ${g.lr}), weight decay ${g.weightDecay} ${g.decayMode}, ${g.params.length} variables`,
    );
  }
  // the trainer builder resolves the same count; this is only the line that explains it
  const threads = resolveThreads(job.train.threads, p.backend.tfBackend, job.train.batch, undefined, trainedMultiplyAdds(network, p.cachedStages));
  if (threads.threads > 1) {
    log(`threads: ${threads.reason}; each computes the gradients of ~${Math.ceil(job.train.batch / threads.threads)} images, BatchNorm statistics per thread`);
  }
  if (p.cachedStages > 0) log(`frozen: the first ${p.cachedStages} stage(s) are frozen; ${frozenPrefixRule(job.data.augment, prefixCacheSize(p))}`);
  for (const w of planLrWdWarnings(p)) log(`warning: ${w.message}`);
}

/**
 * After training: the weights to export (the EMA's or the trained ones), the final validation, the export with its
 * accuracy check, summary.json, and the closing lines and report.
 */
async function finishRun(
  p: Prepared,
  trainer: Trainer,
  fit: FitResult,
  ema: WeightEma | null,
  exportDir: string,
  opts: RunOptions,
  log: (s: string) => void,
  resume: ResumePlan | null,
): Promise<JobResult> {
  const { job, stages, data, network } = p;
  if (fit.stoppedEarly) log(`stopped after epoch ${fit.epochs}: ${fit.stoppedEarly}`);
  // from here on the model holds what is exported; validation below runs on the EMA either way
  if (ema?.config.export === 'ema') ema.copyToModel();
  const emaRecord = ema?.record();
  const val = data.val.length ? await trainer.evaluate(data.val) : undefined;
  const metrics = { val: val && { loss: val.metrics.loss, accuracy: val.metrics.accuracy, confusion: val.confusion }, epochs: fit.history };
  const evalOpts = { size: network.backbone.inputSize, batch: job.train.batch };
  await stages.exporter.export(
    network,
    exportDir,
    { trainingConfig: job, metrics, evalCrop: { mode: job.eval.crop, cropPct: job.eval.cropPct }, ...(emaRecord ? { ema: emaRecord } : {}) },
    {
      settings: job.export,
      // a head over GraphModel embeddings is exported alone and takes no pixels: nothing to evaluate it on here
      evaluate:
        network.infer.inputs[0].shape.length === 4
          ? { images: data.val.length, run: (m, preprocess) => topOneAccuracy(m, data, data.val, { ...evalOpts, preprocess }) }
          : undefined,
      log,
    },
  );
  if (data.skipped.length) {
    log(`skipped ${data.skipped.length} file(s):`);
    for (const s of data.skipped) log(`  ${s.reason}`);
  }
  writeFileAtomic(
    path.join(job.out, 'summary.json'),
    JSON.stringify(
      {
        val: metrics.val,
        skipped: data.skipped,
        export: exportDir,
        stoppedEarly: fit.stoppedEarly ?? null,
        guardEvents: fit.guardEvents,
        ...(emaRecord ? { ema: emaRecord } : {}),
      },
      null,
      2,
    ),
  );
  ema?.dispose();
  if (val) {
    log(
      `validation accuracy ${val.metrics.accuracy.toFixed(3)} (loss ${val.metrics.loss.toFixed(3)}) on ${data.val.length} images` +
        (emaRecord ? `, on the weight EMA (decay ${emaRecord.decay}; the export holds the ${emaRecord.weights === 'ema' ? 'EMA' : 'raw'} weights)` : ''),
    );
  }
  log(`exported to ${exportDir}`);
  if (opts.report ?? true) log(`report: ${(await writeReport(job.out)).html}`);
  return {
    job,
    backend: p.backend,
    network,
    plan: p.plan,
    fit,
    val: val && { ...val.metrics, confusion: val.confusion },
    exportDir,
    skipped: data.skipped,
    cachedStages: p.cachedStages,
    resumedFrom: resume?.dir,
  };
}
async function runLocked(
  input: JobInput | Record<string, unknown>,
  opts: RunOptions,
  log: (s: string) => void,
  resume: ResumePlan | null,
  jobInput: Record<string, unknown>,
  exportDir: string,
): Promise<JobResult> {
  const p = await prepare(jobInput, { ...opts, configFile: undefined });
  const { job, stages, data, network, schedule } = p;
  log(`inputs: ${describeJobInputs(job, network.backbone.inputSize)}`);
  const provenance = runProvenance({
    dataDir: job.data.dir,
    classes: data.classes,
    splits: { train: data.train, val: data.val, ...(data.test ? { test: data.test } : {}) },
    model: {
      source: job.model.source,
      size: network.backbone.inputSize,
      weights: network.train.weights.map((w) => ({ name: w.originalName, shape: w.shape })),
    },
    layertuneVersion: packageVersion(),
  });
  // before anything of the run folder is touched: a refused resume leaves metrics and checkpoints as they were
  let fineTunePlan: FineTunePlan | null;
  try {
    if (resume) checkProvenance(resume.provenance, provenance, opts.force ?? false, log);
    // fastai's fine_tune: a frozen phase, then everything unfrozen, over one optimizer (src/train/fine-tune.ts)
    fineTunePlan = job.train.freezeEpochs > 0 ? planFineTune(job, p.plan, p.stepsPerEpoch) : null;
    await checkEveryClassDecodes(data, network.backbone.inputSize);
  } catch (e) {
    // refused before training: nothing else holds the network, so its weights would stay allocated
    disposeNetwork(network);
    throw e;
  }
  logRunPlan(p, fineTunePlan !== null, log);
  const r = schedule.resolved.lr;
  const optimizer = stages.optimizer.create(p.plan.groups, job);
  const fineTune = fineTunePlan ? new FineTune(fineTunePlan, optimizer, r.scale) : null;
  if (fineTune) for (const line of describeFineTune(fineTune.plan, r.scale)) log(`fine-tune: ${line}`);
  const restored = resume ? loadCheckpoint(resume.dir) : null;
  // keep what the interrupted run logged up to its checkpoint; the reporters start a fresh metrics file
  if (restored) setAsideMetrics(job.out, restored.trainer.step, restored.trainer.epoch);
  const hasVal = data.val.length > 0;
  const watched = [
    ['plateau.monitor', job.plateau?.monitor],
    ['earlyStopping.monitor', job.earlyStopping?.monitor],
    ['checkpoint.monitor', job.checkpoint.monitor],
  ].filter(([, m]) => m?.startsWith('val_'));
  if (!hasVal && watched.length) {
    log(`warning: no validation images: ${watched.map(([k, m]) => `${k} "${m}"`).join(', ')} read the training metrics instead`);
  }
  const metricsOf: MetricsOf = hasVal ? epochMetrics : (info) => metricsWithTrainAsVal(epochMetrics(info));
  const weights = modelWeights(network.train);
  // averaged from the weights the run starts with; a resume replaces it with the checkpoint's below
  const ema = job.ema ? new WeightEma(network.train, job.ema) : null;
  if (ema && job.ema?.export === 'ema' && job.earlyStopping?.restoreBestWeights) {
    log('warning: ema.export is "ema": the export holds the final weight EMA, not the best epoch earlyStopping.restoreBestWeights puts back');
  }
  // the built-in callbacks come from the container's TOKENS.RunCallbacks factories, each given the run's context
  const context: RunContext = {
    job,
    optimizer,
    stepsPerEpoch: p.stepsPerEpoch,
    totalSteps: schedule.resolved.lr.totalSteps,
    fineTune,
    weights,
    resumed: restored !== null,
    metricsOf,
    handleSignals: opts.handleSignals ?? false,
    log,
  };
  const builtIn = stages.runCallbacks.flatMap((f) => f.create(context));
  const esCallback = builtIn.find((c): c is EarlyStoppingCallback => c instanceof EarlyStoppingCallback) ?? null;
  const interrupt = builtIn.find((c): c is InterruptOnSignal => c instanceof InterruptOnSignal) ?? null;
  // the trainer runs them by their `order` (CALLBACK_ORDER), not by their place in this list
  const callbacks = [...stages.reporters.create(job, job.out), ...builtIn, ...(opts.callbacks ?? []), ...boundCallbacks(p.container)];
  const lrPolicy: LrPolicy = {
    factor: (step, epoch) => (fineTune ? fineTune.factor(step) : schedule.factor(step, epoch)),
    epochEnd: (epoch, metrics) => {
      const d = schedule.onEpochEnd(epoch, hasVal ? metrics : metricsWithTrainAsVal(metrics));
      if (d.reduced) log(`plateau: rate multiplier now ×${d.multiplier.toPrecision(4)} from epoch ${epoch + 2}`);
      return { stop: d.stop, reason: d.reason };
    },
  };
  const judge = bestJudge(job, hasVal, esCallback, metricsOf);
  // every stateful part of the run, once: the checkpointer captures them all, a resume restores them all
  const state = new StateRegistry();
  const meta = { job: JSON.parse(JSON.stringify(job)) as Record<string, unknown>, input: jobInput, provenance };
  const checkpointer = stages.checkpointer.create(job.checkpoint, job.out, meta, state, judge);
  const trainer = stages.trainer.create(p, {
    optimizer,
    freeze: fineTune,
    epochs: fineTune?.plan.totalEpochs,
    lr: lrPolicy,
    callbacks,
    guard: job.guard,
    ema,
    onEpochCommitted: (_t, info) => checkpointer.onEpochCommitted(info),
    log,
  });
  state.add(
    trainer,
    schedule,
    ...(esCallback ? [esCallback.es, esCallback.es.bestWeightsState] : []),
    judge,
    weights,
    optimizer,
    ...(ema ? [ema] : []),
    ...boundStateful(p.container),
  );
  if (restored) {
    state.restore(restored, ['trainer', 'schedule', 'weights', 'optimizer']);
    // a forced resume that turned the EMA on: it starts from the restored weights, not the pretrained ones
    if (ema && !restored.ema) ema.restart();
  }
  let fit: FitResult;
  try {
    fit = await trainer.fit();
  } catch (e) {
    ema?.dispose();
    throw e;
  } finally {
    optimizer.dispose();
    interrupt?.dispose();
    if (restored) joinMetrics(job.out);
  }
  return finishRun(p, trainer, fit, ema, exportDir, opts, log, resume);
}

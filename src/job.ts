import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { createContainer, resolveStages, type Stages } from './container';
import { resolveJob } from './config/load';
import type { Job, JobInput } from './config/schema';
import { describeChoice, type BackendChoice } from './engine/backend';
import { ensureWritableDir } from './export/atomic';
import { attachHead, applyBatchNormModes, splitAtStage, HEAD_LAYERS, type Network } from './models/network';
import { describeLayers, type GroupPlan } from './groups';
import { namedVariables } from './optim/named';
import { Trainer, type FitResult } from './train/trainer';
import type { Callback } from './train/callbacks';
import type { DataSource } from './data/source';

export interface RunOptions {
  /** A YAML/JSON job file; `input` overrides it field by field. */
  configFile?: string;
  /** Replace pipeline stages (tests, embedding applications). */
  stages?: Partial<Stages>;
  /** Extra callbacks around the loop. */
  callbacks?: Callback[];
  log?: (line: string) => void;
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
}

/** Everything a training run needs, built but not run: shared by train, plan, lr-find and search. */
export interface Prepared {
  job: Job;
  stages: Stages;
  backend: BackendChoice;
  data: DataSource;
  network: Network;
  plan: GroupPlan;
  cachedStages: number;
  trainableVars: Record<string, tf.Variable>;
  stepsPerEpoch: number;
}

export async function prepare(input: JobInput | Record<string, unknown> = {}, opts: RunOptions = {}): Promise<Prepared> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const job = resolveJob(input, opts.configFile);
  const stages = { ...resolveStages(createContainer()), ...opts.stages };
  const backend = await stages.backend.select(job.backend);
  log(describeChoice(backend));
  const data = stages.data.create(job);
  for (const w of data.warnings) log(`warning: ${w}`);
  const backbone = await stages.modelSource.load({ source: job.model.source, size: job.model.size });
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
    const stageVars = layers.filter((l) => l.stage === s).flatMap((l) => l.variables.map((v) => v.name));
    if (stageVars.some((v) => !frozen.has(v))) break;
    cachedStages = s + 1;
  }
  const frozenLayers = new Set(layers.filter((l) => l.variables.length > 0 && l.variables.every((v) => frozen.has(v.name))).map((l) => l.name));
  applyBatchNormModes(network, job.model.batchNorm, frozenLayers, job.model.bnMomentum);
  const nTrain = data.train.length;
  const stepsPerEpoch = Math.ceil(nTrain / job.train.batch);
  return { job, stages, backend, data, network, plan, cachedStages, trainableVars, stepsPerEpoch };
}

/** Fine-tunes a pretrained backbone on an image folder and exports it: what `layertune train` runs. */
export async function runJob(input: JobInput | Record<string, unknown> = {}, opts: RunOptions = {}): Promise<JobResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const job0 = resolveJob(input, opts.configFile);
  ensureWritableDir(job0.out);
  const exportDir = job0.export ?? path.join(job0.out, 'model');
  ensureWritableDir(path.dirname(path.resolve(exportDir)), 'export');
  const p = await prepare(input, opts);
  const { job, stages, data, network } = p;
  log(`data: ${data.classes.length} classes (${data.classes.join(', ')}), ${data.train.length} train / ${data.val.length} val images`);
  const schedule = stages.schedule.create(job, { batch: job.train.batch, stepsPerEpoch: p.stepsPerEpoch, epochs: job.train.epochs });
  const r = schedule.resolved.lr;
  log(
    `lr: rates are defined at batch ${r.baseBatch} and scaled ${r.scaling} to batch ${r.effectiveBatch} (x${r.scale.toPrecision(4)})` +
      (r.warmup.steps > 0 ? `, ${r.warmup.type} warmup over ${r.warmup.steps} steps` : ''),
  );
  for (const g of p.plan.groups) {
    log(`  group ${g.name}: lr ${(g.lr * schedule.factor(0, 0)).toPrecision(4)} (configured ${g.lr}), weight decay ${g.weightDecay} ${g.decayMode}, ${g.params.length} variables`);
  }
  if (p.cachedStages > 0) log(`frozen: the first ${p.cachedStages} stage(s) are frozen; their outputs are computed once per image and cached`);
  const optimizer = stages.optimizer.create(p.plan.groups, job);
  const { prefix, suffix } =
    p.cachedStages > 0 ? splitAtStage(network, p.cachedStages - 1) : { prefix: null, suffix: network.train };
  const callbacks = [...stages.reporters.create(job, job.out), ...(opts.callbacks ?? [])];
  const lrPolicy = {
    factor: (step: number, epoch: number) => schedule.factor(step, epoch),
    epochEnd: (epoch: number, metric: number) => schedule.onEpochEnd(epoch, { val_loss: metric, loss: metric }),
  };
  const trainer = new Trainer(network, data, p.trainableVars, optimizer, lrPolicy, callbacks, {
    epochs: job.train.epochs,
    batch: job.train.batch,
    size: network.backbone.inputSize,
    flip: job.data.flip,
    seed: job.train.seed,
    cachedStages: p.cachedStages,
    cacheBytes: job.train.featureCacheMB * 1024 * 1024,
    spillDir: path.join(job.out, 'feature-cache'),
    monitorNorms: job.train.monitorRatios,
  }, { prefix, suffix });
  let fit: FitResult;
  try {
    fit = await trainer.fit();
  } finally {
    optimizer.dispose();
  }
  const val = data.val.length ? await trainer.evaluate(data.val) : undefined;
  const metrics = { val: val && { loss: val.metrics.loss, accuracy: val.metrics.accuracy, confusion: val.confusion }, epochs: fit.history };
  await stages.exporter.export(network, exportDir, { trainingConfig: job, metrics });
  if (data.skipped.length) {
    log(`skipped ${data.skipped.length} file(s):`);
    for (const s of data.skipped) log(`  ${s.reason}`);
  }
  fs.writeFileSync(path.join(job.out, 'summary.json'), JSON.stringify({ val: metrics.val, skipped: data.skipped, export: exportDir }, null, 2));
  if (val) log(`validation accuracy ${val.metrics.accuracy.toFixed(3)} (loss ${val.metrics.loss.toFixed(3)}) on ${data.val.length} images`);
  log(`exported to ${exportDir}`);
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
  };
}

/**
 * The sandboxed BullMQ processor: every queued trial, search summary and submitted job runs here, in a child
 * process of `layertune worker`. Training blocks the event loop for whole steps; in the worker's own process that
 * would stop BullMQ renewing the job's lock, another worker would take the job as stalled and it would run twice.
 * Here only this child blocks and the parent keeps the lock alive.
 */
import { type SandboxedJob, UnrecoverableError } from 'bullmq';
import IORedis from 'ioredis';
import { runJob } from '../job';
import {
  type PlannedSearch,
  type TrialContext,
  type TrialRecord,
  formatTrial,
  planSearch,
  readTrials,
  runTrial,
  summarise,
  trialKeyOf,
  trialContext,
  writeSearchResults,
  writeTrial,
} from '../tune/search';
import { type ArtifactStore, FsArtifactStore } from './artifact-store';
import { connectionOptions, searchKeys } from './connection';
import { type ChildResult, JOB, type RunJobData, type SearchJobData, type SearchSummary, type TrialJobData } from './jobs';
import { StepTimer } from './step-time';

// the pool keeps this child for the next job: one Redis client and one trial context (cached model, decoded
// folds) per search outlive a single trial
const clients = new Map<string, IORedis>();
const redis = (url: string) => {
  let c = clients.get(url);
  if (!c) {
    c = new IORedis(connectionOptions(url));
    c.on('error', () => {});
    clients.set(url, c);
  }
  return c;
};
/**
 * BullMQ counts failed attempts and stalls apart: a job taken over from a dead worker is still on its first attempt,
 * and only its stall counter says it ran before.
 */
const attemptOf = (job: SandboxedJob) =>
  `attempt ${job.attemptsMade + 1}${job.stalledCounter ? `, taken over after ${job.stalledCounter} stall(s) of its worker` : ''}`;

let cached: { searchId: string; ctx: TrialContext } | null = null;

async function finishedCurves(url: string, searchId: string): Promise<number[][]> {
  const all = await redis(url).hgetall(searchKeys(searchId).curves);
  return Object.values(all).map((v) => JSON.parse(v) as number[]);
}

/**
 * A cancelled search's trial or summary fails at once, without retries: --cancel removes the waiting trials, but a
 * worker may have taken one between the mark and the removal. Running trials are past this check and finish.
 */
async function skipIfCancelled(url: string, searchId: string, what: string): Promise<void> {
  if (await redis(url).exists(searchKeys(searchId).cancelled)) {
    console.log(`${what}: skipped (search ${searchId} was cancelled)`);
    throw new UnrecoverableError(`search ${searchId} was cancelled`);
  }
}

async function trial(job: SandboxedJob<TrialJobData>): Promise<ChildResult<TrialRecord>> {
  const d = job.data;
  await skipIfCancelled(d.url, d.searchId, `trial ${d.trialId + 1}`);
  const plan: PlannedSearch = planSearch(d.base, { search: d.search });
  const t = plan.trials[d.trialId];
  // a retried or duplicated job (at-least-once delivery) finds the record its first run wrote and returns it
  const existing = readTrials(d.out).get(d.trialId);
  if (existing && existing.key === d.key) return { result: existing, stepMs: null };
  console.log(`trial ${d.trialId + 1}/${plan.trials.length}: started (job ${job.id}, ${attemptOf(job)})`);
  if (cached?.searchId !== d.searchId) {
    cached?.ctx.dispose();
    cached = { searchId: d.searchId, ctx: trialContext(plan, () => finishedCurves(d.url, d.searchId)) };
  }
  const timer = new StepTimer();
  const rec = await runTrial(cached.ctx, t, d.trialId, [timer]);
  // the file first: it survives a Redis without persistence going away, and a rerun finds it
  writeTrial(d.out, rec);
  const keys = searchKeys(d.searchId);
  const multi = redis(d.url).multi().hset(keys.records, String(rec.id), JSON.stringify(rec));
  if (rec.status === 'done') multi.hset(keys.curves, String(rec.id), JSON.stringify(rec.curve));
  await multi.exec();
  console.log(formatTrial(plan.cfg, plan.trials.length, rec));
  return { result: rec, stepMs: timer.medianMs() };
}

async function summary(job: SandboxedJob<SearchJobData>): Promise<ChildResult<SearchSummary>> {
  const d = job.data;
  await skipIfCancelled(d.url, d.searchId, 'summary');
  const plan = planSearch(d.base, { search: d.search });
  const all = readTrials(d.out);
  // the children's return values are the records; the files hold the ones reused from earlier runs
  const values = (await job.getChildrenValues()) as Record<string, TrialRecord>;
  for (const rec of Object.values(values)) {
    writeTrial(d.out, rec);
    all.set(rec.id, rec);
  }
  // a record left by a different search config in the same folder is not one of this search's trials
  for (const [id, rec] of all) if (!plan.trials[id] || rec.key !== trialKeyOf(plan, plan.trials[id])) all.delete(id);
  const result = summarise(plan, all, 0);
  result.files = await writeSearchResults(result, plan.base, d.out, plan.lrScale);
  return {
    result: { searchId: d.searchId, trials: result.trials.length, ranking: result.ranking.map((r) => r.id), best: result.best, files: result.files },
    stepMs: null,
  };
}

const store: ArtifactStore = new FsArtifactStore();

async function run(job: SandboxedJob<RunJobData>): Promise<ChildResult> {
  const log = (s: string) => console.log(`[${job.id}] ${s}`);
  log(`started (${attemptOf(job)})`);
  const runDir = await store.open(String(job.data.job.out));
  // a job whose previous worker died continues from its last checkpoint (bit-exact), not from scratch
  const resume = store.hasCheckpoint(runDir) ? runDir : undefined;
  const timer = new StepTimer();
  const r = await runJob({ ...job.data.job, out: runDir }, { resume, force: false, log, callbacks: [timer] });
  await store.publish(runDir, r.exportDir);
  return {
    result: { exportDir: r.exportDir, val: r.val ? { loss: r.val.loss, accuracy: r.val.accuracy } : null, resumedFrom: r.resumedFrom ?? null },
    stepMs: timer.medianMs(),
  };
}

/** Every job's value comes back wrapped with its measured step time; the worker unwraps it (src/queue/worker.ts). */
export default async function processor(job: SandboxedJob): Promise<ChildResult> {
  if (job.name === JOB.trial) return trial(job as SandboxedJob<TrialJobData>);
  if (job.name === JOB.search) return summary(job as SandboxedJob<SearchJobData>);
  if (job.name === JOB.run) return run(job as SandboxedJob<RunJobData>);
  throw new Error(`unknown job name "${job.name}"`);
}

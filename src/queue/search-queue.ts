/**
 * `layertune search --queue URL`: the search planned exactly as in-process (same trials, same record keys), queued
 * as one BullMQ flow. The parent job's id is the search's id, a hash of the search config and the data manifest,
 * so running the command again attaches to the queued search instead of adding a second one. Its children are the
 * trials that have no matching record yet; when they are all done a worker runs the parent, which writes the same
 * trials/*.json, results.{csv,json}, best.yaml and plots as the local search.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { FlowProducer, type Job, Queue } from 'bullmq';
import IORedis from 'ioredis';
import { stagesOf } from '../container';
import type { JobInput } from '../config/schema';
import { UserError } from '../errors';
import { type PlannedSearch, type SearchOptions, formatSearch, planSearch, readTrials, summarise, trialKeyOf, writeManifest } from '../tune/search';
import { QUEUE_NAME, QueueLostError, checkQueue, connectionOptions, searchKeys, shownUrl } from './connection';
import { JOB, type SearchJobData, type TrialJobData } from './jobs';

export interface QueueSearchOptions extends Pick<SearchOptions, 'configFile' | 'search' | 'out'> {
  url: string;
  action: 'run' | 'detach' | 'status' | 'cancel';
  log?: (s: string) => void;
  /** ms between progress polls. */
  pollMs?: number;
}

/** The search's id: the same config over the same data (file list and labels) and output folder gives the same id. */
export function searchIdOf(plan: PlannedSearch, out: string): string {
  const source = stagesOf(plan.container).data.create(plan.job0);
  const manifest = {
    classes: source.classes,
    train: source.train.map((e) => [e.key, e.label]),
    val: source.val.map((e) => [e.key, e.label]),
  };
  const h = crypto.createHash('sha1').update(JSON.stringify({ base: plan.base, search: plan.cfg, out: path.resolve(out), manifest }));
  // BullMQ job ids cannot contain ':'; hex never does
  return `search-${h.digest('hex').slice(0, 16)}`;
}

const childId = (searchId: string, id: number, key: string) => `${searchId}-t${id}-${key}`;

const ACTIVE = new Set(['waiting-children', 'waiting', 'active', 'delayed', 'prioritized']);

export async function queueSearch(input: JobInput | Record<string, unknown>, opts: QueueSearchOptions): Promise<void> {
  const log = opts.log ?? ((s: string) => console.log(s));
  await checkQueue(opts.url);
  const plan = planSearch(input, opts);
  const out = path.resolve(opts.out);
  const searchId = searchIdOf(plan, out);
  const connection = new IORedis(connectionOptions(opts.url));
  let lost = false;
  connection.on('error', () => {});
  connection.on('end', () => (lost = true));
  const queue = new Queue(QUEUE_NAME, { connection });
  queue.on('error', () => {});
  try {
    const parent = await queue.getJob(searchId);
    const state = parent ? await parent.getState() : null;
    if (opts.action === 'status') return log(await statusLine(queue, connection, plan, out, searchId, state));
    if (opts.action === 'cancel') return log(await cancel(queue, searchId, parent, state));
    let reused = 0;
    if (!state || !ACTIVE.has(state)) {
      // a finished (or failed) earlier flow is replaced: trials with records are reused, the rest queued again
      if (parent) await parent.remove({ removeChildren: true });
      const added = await enqueue(connection, plan, out, searchId, opts.url);
      reused = added.reused;
      log(`queued search ${searchId} on ${shownUrl(opts.url)}: ${added.queued} trial(s) to run, ${added.reused} reused from ${out}`);
    } else {
      log(`search ${searchId} is already queued (${state}): attaching`);
    }
    if (opts.action === 'detach') return log(`follow it with: layertune search … --queue ${shownUrl(opts.url)} --status (same flags)`);
    await follow(queue, connection, plan, out, searchId, log, opts.pollMs ?? 2000, () => lost, opts.url, reused);
  } finally {
    await queue.close().catch(() => {});
    connection.disconnect();
  }
}

async function enqueue(connection: IORedis, plan: PlannedSearch, out: string, searchId: string, url: string) {
  writeManifest(out, plan);
  const have = readTrials(out);
  const common = { url, searchId, out, base: plan.base, search: plan.cfg as unknown as Record<string, unknown> };
  const children = plan.trials
    .map((t, id) => ({ id, key: trialKeyOf(plan, t) }))
    .filter(({ id, key }) => have.get(id)?.key !== key)
    .map(({ id, key }) => ({
      name: JOB.trial,
      queueName: QUEUE_NAME,
      data: { ...common, trialId: id, key } satisfies TrialJobData,
      opts: {
        jobId: childId(searchId, id, key),
        attempts: 3,
        backoff: { type: 'exponential', delay: 2000 },
        // a trial that fails all its attempts is left out of the summary rather than blocking it forever
        ignoreDependencyOnFailure: true,
        removeOnFail: false,
      },
    }));
  // trials run on the queue report their curves here; reused ones are added so median stopping sees them too
  const keys = searchKeys(searchId);
  const multi = connection.multi();
  for (const r of have.values())
    if (r.status === 'done' && plan.trials[r.id] && r.key === trialKeyOf(plan, plan.trials[r.id]))
      multi.hset(keys.curves, String(r.id), JSON.stringify(r.curve));
  await multi.exec();
  const flow = new FlowProducer({ connection });
  try {
    await flow.add({
      name: JOB.search,
      queueName: QUEUE_NAME,
      data: { ...common, total: plan.trials.length } satisfies SearchJobData,
      opts: { jobId: searchId },
      children,
    });
  } finally {
    await flow.close();
  }
  return { queued: children.length, reused: plan.trials.length - children.length };
}

interface Progress {
  done: number;
  pruned: number;
  diverged: number;
  running: number;
  failed: number;
  total: number;
}

async function progress(queue: Queue, connection: IORedis, plan: PlannedSearch, out: string, searchId: string): Promise<Progress> {
  const recs = readTrials(out);
  const p: Progress = { done: 0, pruned: 0, diverged: 0, running: 0, failed: 0, total: plan.trials.length };
  for (const [id, t] of plan.trials.entries()) {
    const r = recs.get(id);
    if (r && r.key === trialKeyOf(plan, t)) {
      if (r.status === 'done') p.done++;
      else if (r.status === 'pruned') p.pruned++;
      else p.diverged++;
    }
  }
  for (const [id, t] of plan.trials.entries()) {
    const key = trialKeyOf(plan, t);
    if (recs.get(id)?.key === key) continue;
    const child = await queue.getJob(childId(searchId, id, key));
    const s = child ? await child.getState() : null;
    if (s === 'active') p.running++;
    else if (s === 'failed') p.failed++;
  }
  void connection;
  return p;
}

const fmtProgress = (p: Progress, etaS: number | null) =>
  `${p.done + p.pruned + p.diverged}/${p.total} trials: ${p.done} done, ${p.running} running, ${p.pruned} pruned, ${p.diverged} diverged, ${p.failed} failed` +
  (etaS !== null ? `, ETA ${Math.round(etaS)} s` : '');

async function statusLine(queue: Queue, connection: IORedis, plan: PlannedSearch, out: string, searchId: string, state: string | null): Promise<string> {
  if (!state) return `search ${searchId}: not queued (${readTrials(out).size} trial record(s) in ${out})`;
  return `search ${searchId}: ${state}; ${fmtProgress(await progress(queue, connection, plan, out, searchId), null)}`;
}

async function cancel(queue: Queue, searchId: string, parent: Job | undefined, state: string | null): Promise<string> {
  if (!parent) return `search ${searchId}: not queued, nothing to cancel`;
  try {
    await parent.remove({ removeChildren: true });
  } catch (e) {
    throw new UserError(`search ${searchId} (${state}) could not be removed: ${(e as Error).message} (a trial is running; cancel again when it finishes)`);
  }
  void queue;
  return `search ${searchId}: cancelled (queued trials removed; finished records stay on disk)`;
}

async function follow(
  queue: Queue,
  connection: IORedis,
  plan: PlannedSearch,
  out: string,
  searchId: string,
  log: (s: string) => void,
  pollMs: number,
  isLost: () => boolean,
  url: string,
  reused: number,
): Promise<void> {
  const t0 = Date.now();
  const start = await progress(queue, connection, plan, out, searchId);
  const base = start.done + start.pruned + start.diverged;
  let last = '';
  for (;;) {
    if (isLost()) throw lostError(url, out);
    let state: string | null;
    let p: Progress;
    try {
      const parent = await queue.getJob(searchId);
      state = parent ? await parent.getState() : null;
      if (state === 'completed' || state === 'failed' || !parent) {
        if (state === 'failed') throw new UserError(`search ${searchId}: the summary job failed: ${parent!.failedReason}`);
        if (!parent) throw new UserError(`search ${searchId}: removed from the queue (cancelled?)`);
        break;
      }
      p = await progress(queue, connection, plan, out, searchId);
    } catch (e) {
      if (e instanceof UserError) throw e;
      if (isLost() || connection.status !== 'ready') throw lostError(url, out);
      throw e;
    }
    const finished = p.done + p.pruned + p.diverged - base;
    const left = p.total - p.done - p.pruned - p.diverged;
    const eta = finished > 0 ? ((Date.now() - t0) / 1000 / finished) * left : null;
    const line = fmtProgress(p, eta);
    if (line.replace(/, ETA.*/, '') !== last) log(line);
    last = line.replace(/, ETA.*/, '');
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const result = summarise(plan, readTrials(out), reused);
  result.files = {
    csv: path.join(out, 'results.csv'),
    json: path.join(out, 'results.json'),
    ...(result.best ? { best: path.join(out, 'best.yaml') } : {}),
  };
  for (const line of formatSearch(result)) log(line);
}

const lostError = (url: string, out: string) =>
  new QueueLostError(
    `lost the queue at ${shownUrl(url)} (Redis stopped answering); finished trial records are kept in ${out}/trials; rerun the same command when Redis is back to continue`,
  );

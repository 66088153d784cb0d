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
import { type Progress, etaSeconds, finishedOf, formatProgress } from './progress';

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
/** Child states of a trial that is queued but not held by a worker. */
const QUEUED = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

export async function queueSearch(input: JobInput | Record<string, unknown>, opts: QueueSearchOptions): Promise<void> {
  const log = opts.log ?? ((s: string) => console.log(s));
  await checkQueue(opts.url);
  const plan = planSearch(input, opts);
  const out = path.resolve(opts.out);
  const searchId = searchIdOf(plan, out);
  const pollMs = opts.pollMs ?? 2000;
  const connection = new IORedis(connectionOptions(opts.url));
  let lost = false;
  connection.on('error', () => {});
  connection.on('end', () => (lost = true));
  const queue = new Queue(QUEUE_NAME, { connection });
  queue.on('error', () => {});
  try {
    let parent = await queue.getJob(searchId);
    let state = parent ? await parent.getState() : null;
    const cancelled = (await connection.exists(searchKeys(searchId).cancelled)) === 1;
    if (opts.action === 'status') return log(await statusLine(queue, plan, out, searchId, state, cancelled));
    if (opts.action === 'cancel') return log(await cancel(queue, connection, plan, out, searchId, parent, state));
    if (cancelled) {
      await clearCancelled(queue, connection, searchId, log, pollMs);
      parent = undefined;
      state = null;
    }
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
    if (opts.action === 'detach') {
      log(`follow it from any machine with the same command and --status; stop it with --cancel`);
      return;
    }
    await follow(queue, connection, plan, out, searchId, log, pollMs, () => lost, opts.url, reused);
  } finally {
    await queue.close().catch(() => {});
    connection.disconnect();
  }
}

/**
 * A rerun after --cancel: the cancelled flow goes before the search is queued again. Trials that were running when
 * it was cancelled still hold their locks, so the flow cannot be removed until they finish; their records are
 * then reused like any other. The mark is cleared last, so no worker starts a trial of the old flow meanwhile.
 */
async function clearCancelled(queue: Queue, connection: IORedis, searchId: string, log: (s: string) => void, pollMs: number): Promise<void> {
  let told = false;
  for (;;) {
    const parent = await queue.getJob(searchId);
    if (!parent) break;
    try {
      await parent.remove({ removeChildren: true });
      break;
    } catch {
      if (!told) log(`search ${searchId} was cancelled; waiting for its running trial(s) to finish before queueing it again`);
      told = true;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
  await connection.del(searchKeys(searchId).cancelled);
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

async function progress(
  queue: Queue,
  plan: PlannedSearch,
  out: string,
  searchId: string,
): Promise<{ p: Progress; meanTrialS: number | null; running: number[] }> {
  const recs = readTrials(out);
  const p: Progress = { done: 0, pruned: 0, diverged: 0, running: 0, failed: 0, waiting: 0, notQueued: 0, total: plan.trials.length };
  const seconds: number[] = [];
  const running: number[] = [];
  for (const [id, t] of plan.trials.entries()) {
    const key = trialKeyOf(plan, t);
    const r = recs.get(id);
    if (r && r.key === key) {
      if (r.status === 'done') p.done++;
      else if (r.status === 'pruned') p.pruned++;
      else p.diverged++;
      seconds.push(r.seconds);
      continue;
    }
    const child = await queue.getJob(childId(searchId, id, key));
    const s = child ? await child.getState() : null;
    if (s === 'active') {
      p.running++;
      running.push(id);
    } else if (s === 'failed') p.failed++;
    else if (s !== null && QUEUED.has(s)) p.waiting++;
    else p.notQueued++;
  }
  const meanTrialS = seconds.length ? seconds.reduce((a, b) => a + b, 0) / seconds.length : null;
  return { p, meanTrialS, running };
}

async function statusLine(queue: Queue, plan: PlannedSearch, out: string, searchId: string, state: string | null, cancelled: boolean): Promise<string> {
  const { p, meanTrialS } = await progress(queue, plan, out, searchId);
  const what = cancelled ? `cancelled${state ? ` (flow ${state})` : ''}` : (state ?? 'not queued');
  const eta = cancelled || !state || !ACTIVE.has(state) ? null : etaSeconds(p, meanTrialS);
  return `search ${searchId}: ${what}; ${formatProgress(p, eta)}`;
}

/**
 * --cancel: marks the search cancelled (workers skip its trials), removes the trials still waiting, and lets the
 * running ones finish on their workers. BullMQ cannot stop a job another process holds: the job is locked by its
 * worker, Job.remove refuses a locked job, and Worker.cancelJob only exists inside that worker's process; the
 * sandboxed child that trains has no point where it could be told to stop between steps. A running trial's
 * record is reused by the rerun, so letting it finish wastes nothing. The flow goes once nothing holds it.
 */
async function cancel(
  queue: Queue,
  connection: IORedis,
  plan: PlannedSearch,
  out: string,
  searchId: string,
  parent: Job | undefined,
  state: string | null,
): Promise<string> {
  if (!parent) return `search ${searchId}: not queued, nothing to cancel`;
  if (state === 'completed') return `search ${searchId}: already finished, nothing to cancel`;
  await connection.set(searchKeys(searchId).cancelled, new Date().toISOString());
  const recs = readTrials(out);
  let removed = 0;
  for (const [id, t] of plan.trials.entries()) {
    const key = trialKeyOf(plan, t);
    if (recs.get(id)?.key === key) continue;
    const child = await queue.getJob(childId(searchId, id, key));
    const s = child ? await child.getState() : null;
    if (!child || s === null || !QUEUED.has(s)) continue;
    try {
      await child.remove();
      removed++;
    } catch {
      // taken by a worker since: it sees the mark and fails at once, or is past it and finishes
    }
  }
  const { running } = await progress(queue, plan, out, searchId);
  let flow = 'the queued flow is removed';
  try {
    await parent.remove({ removeChildren: true });
  } catch {
    flow = 'the flow goes when they finish';
  }
  const runningPart = running.length
    ? `${running.length} running trial(s) (${running.map((id) => id + 1).join(', ')}) finish on their workers and keep their records (BullMQ cannot stop a job another process holds); ${flow}`
    : `none was running; ${flow}`;
  return `search ${searchId}: cancelled: ${removed} waiting trial(s) removed; ${runningPart}. Finished records stay in ${out}; rerun the same command to resume`;
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
  const base = finishedOf((await progress(queue, plan, out, searchId)).p);
  let last = '';
  for (;;) {
    if (isLost()) throw lostError(url, out);
    let state: string | null;
    let p: Progress;
    try {
      // --cancel from any machine: running trials finish on their workers, but this search will not be summarised
      if ((await connection.exists(searchKeys(searchId).cancelled)) === 1)
        throw new UserError(`search ${searchId} was cancelled (--cancel); finished records stay in ${out}; rerun the same command to resume`);
      const parent = await queue.getJob(searchId);
      state = parent ? await parent.getState() : null;
      if (state === 'completed' || state === 'failed' || !parent) {
        if (state === 'failed') throw new UserError(`search ${searchId}: the summary job failed: ${parent!.failedReason}`);
        if (!parent) throw new UserError(`search ${searchId}: removed from the queue`);
        break;
      }
      p = (await progress(queue, plan, out, searchId)).p;
    } catch (e) {
      if (e instanceof UserError) throw e;
      if (isLost() || connection.status !== 'ready') throw lostError(url, out);
      throw e;
    }
    // the submitter saw these trials finish: wall time per trial so far, over every worker together
    const finished = finishedOf(p) - base;
    const left = p.total - finishedOf(p);
    const eta = finished > 0 ? ((Date.now() - t0) / 1000 / finished) * left : null;
    const line = formatProgress(p, eta);
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

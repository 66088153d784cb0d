/**
 * `layertune submit job.yaml … --queue URL`: whole fine-tuning jobs (what `layertune train` runs) queued for any
 * worker. A job's id hashes its resolved config, so submitting the same file again attaches to it.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';
import { readJobFile, resolveJob } from '../config/load';
import { UserError } from '../errors';
import { QUEUE_NAME, checkQueue, connectionOptions, shownUrl } from './connection';
import { JOB, type RunJobData } from './jobs';

export async function submitJobs(files: string[], opts: { url: string; detach: boolean; log?: (s: string) => void }): Promise<number> {
  const log = opts.log ?? ((s: string) => console.log(s));
  // every file is read and validated before anything is queued: one bad file queues nothing
  const jobs = files.map((f) => {
    const raw = readJobFile(f);
    const job = resolveJob({}, f);
    // relative paths in a job file are the submitter's; workers elsewhere need them absolute (shared storage)
    const abs = {
      ...raw,
      out: path.resolve(job.out),
      export: job.export.dir ? { ...(raw.export as object), dir: path.resolve(job.export.dir) } : raw.export,
      data: { ...(raw.data as object), dir: path.resolve(job.data.dir) },
    };
    const id = `job-${crypto.createHash('sha1').update(JSON.stringify(abs)).digest('hex').slice(0, 16)}`;
    return { file: f, id, data: { job: abs } satisfies RunJobData };
  });
  await checkQueue(opts.url);
  const connection = new IORedis(connectionOptions(opts.url));
  connection.on('error', () => {});
  const queue = new Queue(QUEUE_NAME, { connection });
  const eventsConnection = new IORedis(connectionOptions(opts.url));
  eventsConnection.on('error', () => {});
  const events = new QueueEvents(QUEUE_NAME, { connection: eventsConnection });
  queue.on('error', () => {});
  events.on('error', () => {});
  try {
    for (const j of jobs) {
      const old = await queue.getJob(j.id);
      const state = old ? await old.getState() : null;
      if (old && (state === 'completed' || state === 'failed')) await old.remove();
      await queue.add(JOB.run, j.data, { jobId: j.id, attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnFail: false });
      log(`queued ${j.file} as ${j.id} on ${shownUrl(opts.url)}`);
    }
    if (opts.detach) return 0;
    await events.waitUntilReady();
    let failed = 0;
    for (const j of jobs) {
      const job = await queue.getJob(j.id);
      try {
        const r = (await job!.waitUntilFinished(events)) as { exportDir: string; resumedFrom: string | null };
        log(`${j.file}: exported to ${r.exportDir}${r.resumedFrom ? ` (resumed from ${r.resumedFrom})` : ''}`);
      } catch (e) {
        failed++;
        log(`${j.file}: failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    if (failed) throw new UserError(`${failed} of ${jobs.length} submitted job(s) failed`);
    return 0;
  } finally {
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
    connection.disconnect();
    eventsConnection.disconnect();
  }
}

/**
 * The `--queue redis://[user:password@]HOST:PORT/DB` URL: parsed once, checked with one round trip before anything
 * is queued or a worker starts, so a typo, a wrong password or a stopped server is one line naming the URL.
 * Only code behind `--queue` imports this module: without it, ioredis and bullmq are never loaded.
 */
import IORedis, { type RedisOptions } from 'ioredis';
import { UserError } from '../errors';

/** The BullMQ queue every layertune worker and submitter shares on one Redis database. */
export const QUEUE_NAME = 'layertune';

/** Thrown when the queue URL is unusable: exit 2 like every other bad input. */
export class QueueUrlError extends UserError {}

/** Redis stopped answering mid-run: one line, exit 2; finished records are on disk and a rerun continues. */
export class QueueLostError extends UserError {}

/** The URL with its password hidden: what error lines print. */
export function shownUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

export function parseQueueUrl(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueUrlError(`--queue ${shownUrl(url)}: not a URL (expected redis://HOST:PORT/DB)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QueueUrlError(`--queue ${shownUrl(url)}: the scheme must be redis:// or rediss://`);
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) throw new QueueUrlError(`--queue ${shownUrl(url)}: the database "${db}" is not a number`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db: db === '' ? 0 : Number(db),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    // BullMQ's blocking commands must wait as long as they need rather than fail after ioredis's retry count
    maxRetriesPerRequest: null,
  };
}

/**
 * Connection options for long-lived clients: reconnect for `giveUpMs`, then stop (ioredis emits 'end'), so a
 * Redis that went away ends the process with one line instead of a retry loop forever.
 */
export function connectionOptions(url: string, giveUpMs = 10000): RedisOptions {
  const started: { at: number | null } = { at: null };
  return {
    ...parseQueueUrl(url),
    retryStrategy: () => {
      started.at ??= Date.now();
      return Date.now() - started.at > giveUpMs ? null : 500;
    },
  };
}

/** One PING with no retries: resolves when the queue is usable, otherwise a QueueUrlError naming the URL. */
export async function checkQueue(url: string): Promise<void> {
  const client = new IORedis({ ...parseQueueUrl(url), lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 5000 });
  // a refused connection rejects connect() with a bare "Connection is closed."; the event carries the cause
  let cause: Error | null = null;
  client.on('error', (e: Error) => (cause ??= e));
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    const first = cause as Error | null;
    const msg = `${(e as Error).message} ${first?.message ?? ''}`;
    const why = /WRONGPASS|NOAUTH|invalid username-password/i.test(msg)
      ? 'Redis refused the credentials (wrong or missing password)'
      : /ECONNREFUSED/.test(msg)
        ? 'nothing is listening there (is redis-server running?)'
        : (first ?? (e as Error)).message;
    throw new QueueUrlError(`--queue ${shownUrl(url)}: ${why}`);
  } finally {
    client.disconnect();
  }
}

/**
 * Redis keys of one search: trial records and first-fold curves, as hashes keyed by trial id, and the mark
 * `--cancel` leaves so workers skip the search's trials until it is run again.
 */
export const searchKeys = (searchId: string) => ({
  records: `${QUEUE_NAME}:search:${searchId}:records`,
  curves: `${QUEUE_NAME}:search:${searchId}:curves`,
  cancelled: `${QUEUE_NAME}:search:${searchId}:cancelled`,
});

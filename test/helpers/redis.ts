import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';

/** A throwaway redis-server on a free port of 127.0.0.1, without persistence, stopped by its pid. */
export interface RedisServer {
  port: number;
  url: string;
  pid: number;
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop), for the Redis-went-away tests. */
  restart(): Promise<void>;
}

export const hasRedisServer = (): boolean => spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

/**
 * Skips the calling suite when redis-server is not installed, except under CI=true, where a missing server is a
 * failure: CI installs it (.ci/run), so a skip there would hide the queue tests.
 */
export function requireRedis(ctx: Mocha.Context): void {
  if (hasRedisServer()) return;
  if (process.env.CI === 'true') throw new Error('redis-server is not installed (CI=true: the queue tests must run; .ci/run installs it)');
  console.log('    (skipped: redis-server is not installed; apt-get install redis-server to run the queue tests)');
  ctx.skip();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function waitForPort(port: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tryOnce = () => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve();
      });
      c.once('error', () => {
        c.destroy();
        if (Date.now() > until) reject(new Error(`redis-server did not listen on ${port} within ${ms} ms`));
        else setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' });
    await waitForPort(port, 10000);
  };
  await launch();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    get pid() {
      return child.pid!;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        process.kill(child.pid!, 'SIGKILL');
      }),
    restart: launch,
  };
  return server;
}

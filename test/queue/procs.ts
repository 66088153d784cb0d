import { type ChildProcess, spawn } from 'node:child_process';
import { BIN, ROOT } from '../cli/run';

/** A CLI child in its own process group, so kill -9 takes its sandboxed processor down with it, like a lost machine. */
export interface Proc {
  child: ChildProcess;
  out: string[];
  err: string[];
  exited: Promise<number | null>;
  waitFor(re: RegExp, ms?: number): Promise<string>;
  kill9(): void;
  /** SIGTERM to the CLI process alone (what Kubernetes sends a pod's main process), not its sandboxed children. */
  term(): void;
}
export function cli(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  const err: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  const feed = (sink: string[]) => {
    let pending = '';
    return (d: string) => {
      pending += d;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) {
        sink.push(l);
        for (const w of [...waiters]) if (w.re.test(l)) waiters.splice(waiters.indexOf(w), 1), w.resolve(l);
      }
    };
  };
  child.stdout!.setEncoding('utf8').on('data', feed(out));
  child.stderr!.setEncoding('utf8').on('data', feed(err));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    out,
    err,
    exited,
    waitFor: (re, ms = 120000) =>
      new Promise((resolve, reject) => {
        const hit = [...out, ...err].find((l) => re.test(l));
        if (hit) return resolve(hit);
        const t = setTimeout(() => reject(new Error(`no line matching ${re} within ${ms} ms; stdout:\n${out.join('\n')}\nstderr:\n${err.join('\n')}`)), ms);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
      }),
    term: () => {
      process.kill(child.pid!, 'SIGTERM');
    },
    kill9: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

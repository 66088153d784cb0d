import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'layertune.js');

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The real CLI in a child process, as a user runs it. */
export function layertune(args: string[], timeoutMs = 180000): Run {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Any node script as a child whose stdout lines reach `onStdoutLine`, which may signal it; resolves when it exits. */
export function nodeChild(argv: string[], onStdoutLine: (line: string, kill: (signal?: NodeJS.Signals) => void) => void): Promise<Run> {
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) onStdoutLine(l, (signal) => child.kill(signal ?? 'SIGKILL'));
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
}

/** The CLI as a child that `onStdoutLine` may signal (SIGKILL unless told otherwise); resolves when it exits. */
export function layertuneKillable(args: string[], onStdoutLine: (line: string, kill: (signal?: NodeJS.Signals) => void) => void): Promise<Run> {
  return nodeChild([BIN, ...args], onStdoutLine);
}

/** stderr without tfjs's banner and npm noise: what the user is told. */
export function userLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !/^=+$|Hi, looks like you are running TensorFlow\.js|^npm warn/.test(l));
}

/**
 * metrics.jsonl across a resume. The reporters open a fresh metrics file for every run, so a resumed run keeps
 * what came before in `metrics.jsonl.before-resume` (only the lines the checkpoint covers: an interrupted run may
 * have logged steps past its last checkpoint, which the resumed run repeats) and joins the two when it ends. A
 * resume that dies before joining leaves both files, and the next resume joins them first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../export/atomic';

const FILE = 'metrics.jsonl';
const PREFIX = 'metrics.jsonl.before-resume';

function readLines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** Keeps the lines a checkpoint after `epochs` epochs / `steps` steps covers; `end` markers go. */
export function linesBefore(lines: string[], steps: number, epochs: number): string[] {
  return lines.filter((l) => {
    let o: { type?: string; step?: unknown; epoch?: unknown };
    try {
      o = JSON.parse(l);
    } catch {
      return false; // a line cut short by a crash
    }
    if (o.type === 'end') return false;
    if (o.type === 'epoch') return typeof o.epoch !== 'number' || o.epoch < epochs;
    if (typeof o.step === 'number') return o.step < steps;
    if (typeof o.epoch === 'number') return o.epoch < epochs;
    return true;
  });
}

/** Before a resumed run starts: set aside what the checkpoint covers. */
export function setAsideMetrics(runDir: string, steps: number, epochs: number): number {
  const lines = [...readLines(path.join(runDir, PREFIX)), ...readLines(path.join(runDir, FILE))];
  const kept = linesBefore(lines, steps, epochs);
  writeFileAtomic(path.join(runDir, PREFIX), kept.map((l) => `${l}\n`).join(''));
  return kept.length;
}

/** After a resumed run (finished or failed): one metrics.jsonl again, earlier lines first. */
export function joinMetrics(runDir: string): void {
  const pre = path.join(runDir, PREFIX);
  if (!fs.existsSync(pre)) return;
  const lines = [...readLines(pre), ...readLines(path.join(runDir, FILE))];
  writeFileAtomic(path.join(runDir, FILE), lines.map((l) => `${l}\n`).join(''));
  fs.rmSync(pre);
}

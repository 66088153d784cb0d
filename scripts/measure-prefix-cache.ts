/**
 * The frozen-prefix cache under augmentation, measured (issue 15 item 4): recomputing the frozen prefix on every
 * augmented view (data.augment.cachedViews 0) against caching K views per image, on the standard flowers5 split.
 *
 *   npx tsx scripts/measure-prefix-cache.ts --out DIR [--views 0,2,4,8] [--seeds 1,2,3] [--epochs 8] [--jobs 2]
 *   npx tsx scripts/measure-prefix-cache.ts --out DIR --report
 *
 * Every run: MobileNet v1 0.25 at 224, the default job (batch 16, the classic layer-wise rates) with conv1 and
 * blocks 1-11 frozen (the cached prefix), RandomResizedCrop scale [0.35, 1] and colour jitter 0.2, one thread.
 * Runs are child processes of the built CLI (`npm run build` first), `--jobs` at a time; each finished run is
 * appended to DIR/results.jsonl, so an interrupted measurement resumes where it stopped. The report is a markdown
 * table of mean ± std over seeds: validation accuracy after the last epoch, seconds per epoch (all epochs, and
 * epochs after the first), with the load average at the start and end of the runs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { materialiseSplit } from './bench/peer-split';

const ROOT = path.join(__dirname, '..');
const DATA = path.join(ROOT, '..', 'shared', 'data', 'flowers5');

/** conv1 and blocks 1-11: the first two of the default three groups, frozen. */
const FREEZE = '^conv(1|_(dw|pw)_([1-9]|1[01]))(_bn)?$';

export function jobFor(views: number): Record<string, unknown> {
  return {
    data: {
      augment: {
        randomResizedCrop: { scale: [0.35, 1] },
        colorJitter: { brightness: 0.2, contrast: 0.2, saturation: 0.2 },
        cachedViews: views,
      },
    },
    groups: { strategy: 'stepped', rules: [{ match: FREEZE, freeze: true }] },
  };
}

interface Result {
  id: string;
  views: number;
  seed: number;
  epochs: number;
  acc: number[];
  secs: number[];
  load: [string, string];
}

const loadavg = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function run(args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = fs.createWriteStream(logFile);
    p.stdout.pipe(log);
    p.stderr.on('data', (d) => log.write(d));
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`layertune exited ${code}; see ${logFile}`))));
  });
}

async function runOne(base: string, split: string, views: number, seed: number, epochs: number): Promise<Result> {
  const id = `views${views}-seed${seed}-e${epochs}`;
  const dir = path.join(base, 'runs', id);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'job.yaml'), stringify(jobFor(views)));
  const load0 = loadavg();
  const args = [path.join(ROOT, 'bin', 'layertune.js'), 'train', '--config', path.join(dir, 'job.yaml'), '--data', split, '--out', path.join(dir, 'run')];
  args.push('--epochs', String(epochs), '--seed', String(seed), '--threads', '1', '--no-report');
  await run(args, path.join(dir, 'log.txt'));
  const lines = fs
    .readFileSync(path.join(dir, 'run', 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"type":"epoch"'))
    .map((l) => JSON.parse(l));
  fs.rmSync(path.join(dir, 'run', 'model'), { recursive: true, force: true });
  fs.rmSync(path.join(dir, 'run', 'feature-cache'), { recursive: true, force: true });
  return { id, views, seed, epochs, acc: lines.map((l) => l.val.accuracy), secs: lines.map((l) => l.seconds), load: [load0, loadavg()] };
}

function readResults(base: string): Result[] {
  const f = path.join(base, 'results.jsonl');
  return fs.existsSync(f)
    ? fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
}

export function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  // sample standard deviation (n − 1): the spread over seeds
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

const pm = (xs: number[], d: number) => {
  const m = meanStd(xs);
  return `${m.mean.toFixed(d)} ± ${m.std.toFixed(d)}`;
};
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * One row per (epochs, views): accuracy after the last epoch, the whole run's seconds, and the seconds of an epoch
 * once every view is cached (epochs from K on; recomputing: the epochs after the first, which warms the backend).
 */
export function reportTable(rs: Result[]): string {
  const out = [
    '| epochs | prefix outputs | val accuracy, last epoch | per seed | s for the run | s/epoch, views cached | load (1 min) |',
    '|---|---|---|---|---|---|---|',
  ];
  const settings = [...new Set(rs.map((r) => `${r.epochs}/${r.views}`))].map((k) => k.split('/').map(Number)).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (const [epochs, views] of settings) {
    const g = rs.filter((r) => r.epochs === epochs && r.views === views).sort((a, b) => a.seed - b.seed);
    const last = g.map((r) => r.acc[r.acc.length - 1]);
    const loads = g.flatMap((r) => r.load.map((l) => Number(l.split(' ')[0])));
    const reuse = g.map((r) => r.secs.slice(Math.max(views, 1)));
    const row = [
      String(epochs),
      views === 0 ? 'recomputed every batch (cachedViews 0)' : `cached, K = ${views} views`,
      `${pm(last, 3)} (n ${g.length})`,
      g.map((r, i) => `s${r.seed} ${last[i].toFixed(3)}`).join(', '),
      pm(
        g.map((r) => r.secs.reduce((a, b) => a + b, 0)),
        0,
      ),
      reuse.every((x) => x.length > 0) ? pm(reuse.map(avg), 1) : '— (no view is reused)',
      `${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
    ];
    out.push(`| ${row.join(' | ')} |`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      views: { type: 'string', default: '0,2,4,8' },
      seeds: { type: 'string', default: '1,2,3' },
      epochs: { type: 'string', default: '8' },
      jobs: { type: 'string', default: '2' },
      report: { type: 'boolean', default: false },
    },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const base = path.resolve(values.out);
  fs.mkdirSync(base, { recursive: true });
  if (values.report) {
    console.log(reportTable(readResults(base)));
    return;
  }
  const split = path.join(base, 'split');
  if (!fs.existsSync(path.join(split, 'val'))) fs.renameSync(materialiseSplit(DATA).dir, split);
  const epochs = Number(values.epochs);
  const done = new Set(readResults(base).map((r) => r.id));
  // seeds outermost, so a cut-short measurement has every setting at the first seeds
  const todo = values.seeds
    .split(',')
    .map(Number)
    .flatMap((seed) => values.views.split(',').map((v) => ({ views: Number(v), seed })))
    .filter((t) => !done.has(`views${t.views}-seed${t.seed}-e${epochs}`));
  console.error(`${todo.length} runs to go in ${base}, ${values.jobs} at a time`);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const t = todo[next++];
      try {
        const r = await runOne(base, split, t.views, t.seed, epochs);
        fs.appendFileSync(path.join(base, 'results.jsonl'), `${JSON.stringify(r)}\n`);
        console.error(`${r.id}: val ${r.acc[r.acc.length - 1].toFixed(3)}, ${avg(r.secs).toFixed(1)} s/epoch (load ${r.load.join(' → ')})`);
      } catch (e) {
        console.error(`[failed] views ${t.views} seed ${t.seed}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Number(values.jobs) }, worker));
  console.log(reportTable(readResults(base)));
}

if (require.main === module) {
  main().catch((e) => {
    console.error((e as Error).message);
    process.exit(1);
  });
}

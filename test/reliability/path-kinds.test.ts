import { expect } from 'chai';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { BIN, ROOT, cli } from './cli';
import { userLines } from '../cli/run';

const base = ['--size', '32', '--batch', '4', '--epochs', '1', '--backend', 'wasm'];

/** The one line a refused command prints, and its exit code. */
function refusal(args: string[]): { code: number | null; line: string; lines: number } {
  const r = cli(args);
  const lines = userLines(r.stderr);
  return { code: r.code, line: lines[lines.length - 1] ?? '', lines: lines.length };
}

describe('every path the user gives is checked for its kind (CLI, dist/)', function () {
  this.timeout(300000);
  let data: string;
  before(async () => {
    data = tmpDir('lt-kinds-data-');
    await writeClassFolder(data, { a: 4, b: 4 });
  });

  it('--data that is a file', () => {
    const f = path.join(tmpDir('lt-kinds-'), 'photos.txt');
    fs.writeFileSync(f, 'x');
    expect(refusal(['train', '--data', f, '--out', tmpDir('lt-kinds-out-'), ...base])).to.deep.equal({
      code: 2,
      line: `error: ${f}: data path is not a folder`,
      lines: 1,
    });
  });

  it('--out inside the data folder is refused before anything is written (the next scan would read it as a class)', () => {
    const d = tmpDir('lt-kinds-d-');
    fs.cpSync(data, d, { recursive: true });
    const before = fs.readdirSync(d);
    const out = path.join(d, 'run');
    const r = refusal(['train', '--data', d, '--out', out, ...base]);
    expect(r.code).to.equal(2);
    expect(r.line).to.equal(`error: ${out}: --out folder is inside the data folder ${d}; choose a folder outside it`);
    expect(fs.readdirSync(d)).to.deep.equal(before);
  });

  it('--resume with a file, a missing folder, or one checkpoint folder instead of the run folder', async () => {
    const f = path.join(tmpDir('lt-kinds-'), 'notes.txt');
    fs.writeFileSync(f, 'x');
    expect(refusal(['train', '--resume', f])).to.include({
      code: 2,
      line: `error: resume: ${f} is a file, not a run folder (pass the --out folder of the run)`,
    });
    const missing = path.join(tmpDir('lt-kinds-'), 'nope');
    expect(refusal(['train', '--resume', missing])).to.include({ code: 2, line: `error: resume: ${missing}: no such run folder` });
    const run = tmpDir('lt-kinds-run-');
    const t = cli(['train', '--data', data, '--out', run, ...base]);
    expect(t.code, t.stderr).to.equal(0);
    const ck = path.join(run, 'checkpoints', 'last');
    expect(refusal(['train', '--resume', ck])).to.include({
      code: 2,
      line: `error: resume: ${ck} is one checkpoint of a run; pass the run folder ${run} (it resumes from its latest checkpoint)`,
    });
  });

  it('--model: a folder named like a weights file, and a FIFO (refused without blocking)', () => {
    const dir = tmpDir('lt-kinds-m-');
    const folder = path.join(dir, 'weights.safetensors');
    fs.mkdirSync(folder);
    expect(refusal(['train', '--data', data, '--out', tmpDir('lt-kinds-out-'), '--model', folder, ...base])).to.deep.equal({
      code: 2,
      line: `error: ${folder}: is a folder, not a .safetensors file`,
      lines: 1,
    });
    const fifo = path.join(dir, 'model.h5');
    execFileSync('mkfifo', [fifo]);
    expect(refusal(['train', '--data', data, '--out', tmpDir('lt-kinds-out-'), '--model', fifo, ...base])).to.deep.equal({
      code: 2,
      line: `error: ${fifo}: not a regular file (a .h5 model file was expected)`,
      lines: 1,
    });
  });

  it('two `layertune train` processes started together on one --out: exactly one runs, the other names its PID', async () => {
    const out = tmpDir('lt-kinds-lock-');
    const start = () => {
      const child = spawn(process.execPath, [BIN, 'train', '--data', data, '--out', out, ...base, '--epochs', '2'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.resume();
      return new Promise<{ pid: number; code: number | null; stderr: string }>((resolve) =>
        child.on('exit', (code) => resolve({ pid: child.pid!, code, stderr })),
      );
    };
    const results = await Promise.all([start(), start()]);
    const won = results.filter((r) => r.code === 0);
    const lost = results.filter((r) => r.code !== 0);
    expect(won, results.map((r) => r.stderr).join('\n')).to.have.length(1);
    expect(lost).to.have.length(1);
    expect(lost[0].code).to.equal(2);
    const lines = userLines(lost[0].stderr);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(new RegExp(`^error: ${out}: run folder is in use by PID ${won[0].pid} on .+; wait for it or choose another --out$`));
    // the winner's log is whole: every line parses, two epochs once each
    const metrics = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.type === 'epoch').map((m) => m.epoch)).to.deep.equal([0, 1]);
    expect(fs.existsSync(path.join(out, '.layertune.lock'))).to.equal(false);
  });
});

import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { layertune, userLines } from './run';

/** A user error: exit code 2 and exactly one `error: <path>: <message>` line, no stack trace. */
function expectOneLineError(args: string[], pattern: RegExp): string {
  const r = layertune(args);
  const lines = userLines(r.stderr);
  expect(r.code, r.stderr).to.equal(2);
  const errors = lines.filter((l) => l.startsWith('error: '));
  expect(errors, r.stderr).to.have.length(1);
  expect(errors[0]).to.match(pattern);
  expect(r.stderr).to.not.match(/^\s+at /m);
  return errors[0];
}

describe('bad input through the CLI', function () {
  this.timeout(300000);
  let dir: string;
  let data: string;
  const job = (name: string, cfg: Record<string, unknown>) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, YAML.stringify({ data: { dir: data }, ...cfg }));
    return f;
  };
  before(async () => {
    dir = tmpDir('lt-bad-');
    data = path.join(dir, 'data');
    await writeClassFolder(data, { a: 8, b: 8 });
  });

  it('a warmup longer than the run', () => {
    // 16 train images at batch 4: 4 steps per epoch, 5 epochs = 20 steps; a 10-epoch warmup is 40
    const f = job('warmup.yaml', { data: { dir: data, valFraction: 0 }, train: { epochs: 5, batch: 4 }, warmup: { epochs: 10 } });
    expectOneLineError(['plan', '--config', f, '--backend', 'cpu'], /^error: warmup\.epochs: warmup of 40 steps must be shorter than the run \(20 steps\)$/);
    // train refuses it before any training or writing
    const out = path.join(dir, 'run-warmup');
    expectOneLineError(['train', '--config', f, '--backend', 'cpu', '--out', out], /^error: warmup\.epochs: /);
    expect(fs.existsSync(path.join(out, 'checkpoints'))).to.equal(false);
  });

  it("the linear scaling rule's default warmup that does not fit", () => {
    // the batch is clamped to the 120 images (issue 13), so the rule is triggered by a small baseBatch instead
    const f = job('warmup.yaml', { lr: { baseBatch: 8 }, train: { batch: 120 } });
    expectOneLineError(
      ['plan', '--config', f, '--backend', 'cpu'],
      /^error: warmup: the default 5-epoch warmup for effective batch \d+ > baseBatch 8 \(\d+ steps\) does not fit in the \d+-step run/,
    );
  });

  it('milestones out of order', () => {
    const f = job('milestones.yaml', { schedule: { type: 'multistep', milestones: [30, 10] } });
    expectOneLineError(
      ['plan', '--config', f, '--backend', 'cpu'],
      /^error: milestones\.yaml\.schedule\.milestones: must be strictly increasing, got 30 then 10/,
    );
  });

  it('a plateau factor ≥ 1', () => {
    const f = job('factor.yaml', { plateau: { factor: 1.5 } });
    expectOneLineError(['plan', '--config', f, '--backend', 'cpu'], /^error: factor\.yaml\.plateau\.factor: must be < 1/);
    expectOneLineError(
      ['train', '--config', f, '--backend', 'cpu', '--out', path.join(dir, 'run-factor')],
      /^error: factor\.yaml\.plateau\.factor: must be < 1/,
    );
  });

  it('new fields: accumulate 0, an unknown checkpoint field, a guard cut ≥ 1, --by nonsense', () => {
    expectOneLineError(['plan', '--backend', 'cpu', '--accumulate', '0'], /^error: config\.train\.accumulate: /);
    expectOneLineError(
      ['plan', '--config', job('ck.yaml', { checkpoint: { evry: 2 } }), '--backend', 'cpu'],
      /^error: ck\.yaml\.checkpoint: unknown field\(s\) "evry"/,
    );
    expectOneLineError(['plan', '--config', job('guard.yaml', { guard: { lrCut: 1 } }), '--backend', 'cpu'], /^error: guard\.yaml\.guard\.lrCut: /);
    expectOneLineError(['plan', '--by', 'group', '--backend', 'cpu'], /^error: --by: expected variable or layer, got "group"$/);
  });

  it('an unknown quantization mode, from the flag or the job file, before anything is written', () => {
    const out = path.join(dir, 'run-int3');
    expectOneLineError(
      ['train', '--data', data, '--quantize', 'int3', '--out', out, '--backend', 'cpu'],
      /^error: config\.export\.quantize: Invalid option: expected one of "none"\|"float16"\|"uint16"\|"uint8"$/,
    );
    expect(fs.existsSync(out)).to.equal(false);
    expectOneLineError(
      ['train', '--config', job('q.yaml', { export: { quantize: 'int3' } }), '--out', out, '--backend', 'cpu'],
      /^error: q\.yaml\.export\.quantize: Invalid option/,
    );
    expectOneLineError(
      ['train', '--config', job('q2.yaml', { export: { maxTop1Drop: 2 } }), '--out', out, '--backend', 'cpu'],
      /^error: q2\.yaml\.export\.maxTop1Drop: /,
    );
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('--resume of a folder without checkpoints', () => {
    // a missing folder is its own line (`no such run folder`, path-kinds.test.ts)
    fs.mkdirSync(path.join(dir, 'nothing-here'), { recursive: true });
    expectOneLineError(
      ['train', '--resume', path.join(dir, 'nothing-here'), '--backend', 'cpu'],
      /^error: resume: .*nothing-here: no checkpoint to resume from/,
    );
  });
});

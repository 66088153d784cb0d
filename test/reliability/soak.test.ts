/**
 * Leaks and soak (issue 8, item 5): 50 epochs on a dozen 32 px images, then LR range tests, then a
 * 10-trial search, all in ONE child process run with --expose-gc (see soak-child.ts). The tensor
 * count must be flat within each phase; RSS after epoch 50 must be within 10% of RSS after epoch 2.
 * The figures are printed for the notes.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { tmpDir } from '../helpers/images';
import { ROOT } from './cli';

interface Sample {
  phase: string;
  i: number;
  numTensors: number;
  rss: number;
  heapUsed: number;
  external: number;
}

const EPOCHS = 50;
const LR_FINDS = 3;
const TRIALS = 10;

describe('reliability: soak (50 epochs, LR range tests and a 10-trial search in one process)', function () {
  this.timeout(600000);
  let samples: Sample[] = [];
  const of = (phase: string) => samples.filter((s) => s.phase === phase);
  const mb = (b: number) => (b / 1048576).toFixed(1);

  before(() => {
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', '-r', 'tsx/cjs', path.join(__dirname, 'soak-child.ts'), tmpDir('lt-soak-'), String(EPOCHS), String(LR_FINDS), String(TRIALS)],
      { cwd: ROOT, encoding: 'utf8', timeout: 560000, maxBuffer: 64 * 1024 * 1024 },
    );
    expect(r.status, r.stderr.slice(-2000)).to.equal(0);
    samples = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{"phase"'))
      .map((l) => JSON.parse(l));
    const e = of('epoch');
    console.log(
      `      soak: RSS ${mb(e[1].rss)} MB after epoch 2, ${mb(e[EPOCHS - 1].rss)} MB after epoch ${EPOCHS} ` +
        `(${(((e[EPOCHS - 1].rss - e[1].rss) / e[1].rss) * 100).toFixed(2)}%); heap ${mb(e[1].heapUsed)} -> ${mb(e[EPOCHS - 1].heapUsed)} MB; ` +
        `tensors ${e[0].numTensors}; lr-find tensors ${of('lr-find').map((s) => s.numTensors)}; ` +
        `trial tensors ${of('trial').map((s) => s.numTensors)}; RSS at the end ${mb(of('end')[0].rss)} MB; ` +
        `divergence-guard rollbacks during the 50 epochs: ${of('guard')[0]?.i}`,
    );
  });

  it(`keeps tf.memory().numTensors identical after every one of ${EPOCHS} epochs`, () => {
    const e = of('epoch');
    expect(e).to.have.length(EPOCHS);
    expect(new Set(e.map((s) => s.numTensors)).size, `numTensors per epoch: ${e.map((s) => s.numTensors)}`).to.equal(1);
  });

  it('grows RSS by less than 10% from epoch 2 to epoch 50', () => {
    const e = of('epoch');
    expect(e[EPOCHS - 1].rss / e[1].rss).to.be.lessThan(1.1);
  });

  it('keeps the tensor count flat over repeated LR range tests (each loads and frees its own network)', () => {
    const l = of('lr-find');
    expect(l).to.have.length(LR_FINDS);
    expect(new Set(l.map((s) => s.numTensors)).size, `numTensors after each LR range test: ${l.map((s) => s.numTensors)}`).to.equal(1);
    expect(l[LR_FINDS - 1].rss / l[0].rss).to.be.lessThan(1.1);
  });

  it(`keeps the tensor count flat over a ${TRIALS}-trial search`, () => {
    const t = of('trial');
    expect(t).to.have.length(TRIALS);
    expect(new Set(t.map((s) => s.numTensors)).size, `numTensors per trial: ${t.map((s) => s.numTensors)}`).to.equal(1);
    expect(t[TRIALS - 1].rss / t[1].rss).to.be.lessThan(1.1);
  });
});

import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readReference, replayCase, type RefFile } from '../../scripts/replay-optimizer-reference';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'optimizers.json');
const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'replay-optimizer-reference.ts');
const TSX = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');

describe('GroupedOptimizer against the PyTorch 1.13 reference (test/fixtures/optimizers.json)', () => {
  let ref: RefFile;
  before(async () => {
    await tf.setBackend('cpu');
    ref = readReference(FIXTURE);
  });

  it('has the 12 cases the issue names', () => {
    expect(ref.cases.map((c) => `${c.optimizer}/${c.schedule}`)).to.have.members([
      'sgd/constant',
      'sgd/warmup5_step10',
      'momentum/constant',
      'momentum/warmup5_step10',
      'nesterov/constant',
      'nesterov/warmup5_step10',
      'adam/constant',
      'adam/warmup5_step10',
      'adamw/constant',
      'adamw/warmup5_step10',
      'sgdw/constant',
      'momentumw/constant',
    ]);
  });

  // One `it` per case so a failure names the algorithm and schedule.
  for (const c of readReference(FIXTURE).cases) {
    it(`${c.optimizer} / ${c.schedule}: every step, every parameter within rtol 1e-5, atol 1e-7; lr[t] matches`, () => {
      const before = tf.memory().numTensors;
      const r = replayCase(ref, c);
      expect(r.ok, JSON.stringify(r)).to.equal(true);
      expect(r.maxLrErr).to.be.below(1e-9);
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('the comparison can fail: a wrong momentum or a perturbed reference value is caught', () => {
    const mom = ref.cases.find((c) => c.optimizer === 'momentum' && c.schedule === 'constant')!;
    expect(replayCase(ref, { ...mom, momentum: 0.89 }).ok).to.equal(false);
    const traj = mom.trajectory.map((s) => ({ ...s }));
    const name = ref.params[0].name;
    traj[19][name] = traj[19][name].map((v, i) => (i === 5 ? v * (1 + 3e-5) + 1e-6 : v));
    expect(replayCase(ref, { ...mom, trajectory: traj }).ok).to.equal(false);
  });

  describe('scripts/replay-optimizer-reference.ts', () => {
    it('prints one JSON line per case and exits 0 on the fixture', () => {
      const out = execFileSync(TSX, [SCRIPT, FIXTURE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const lines = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).to.have.length(12);
      for (const l of lines) {
        expect(Object.keys(l)).to.deep.equal(['optimizer', 'schedule', 'maxAbsErr', 'maxRelErr', 'ok']);
        expect(l.ok).to.equal(true);
        expect(l.maxAbsErr).to.be.below(1e-6);
      }
    });

    it('matches on the wasm backend too (--backend wasm)', () => {
      const r = spawnSync(TSX, [SCRIPT, FIXTURE, '--backend', 'wasm'], { encoding: 'utf8' });
      expect(r.stderr).to.include('backend: wasm');
      expect(r.status, r.stderr).to.equal(0);
      const lines = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).to.have.length(12);
      expect(lines.every((l) => l.ok === true)).to.equal(true);
    });

    it('reads other files of the format (fewer steps, other lrs) and exits 1 when a case fails', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'replay-'));
      try {
        // Same oracle, first 7 steps only: still matches.
        const short: RefFile = JSON.parse(fs.readFileSync(FIXTURE, 'utf8'));
        for (const c of short.cases) {
          c.trajectory = c.trajectory.slice(0, 7);
          c.lr = c.lr.slice(0, 7);
        }
        short.hyper.steps = 7;
        const okFile = path.join(dir, 'short.json');
        fs.writeFileSync(okFile, JSON.stringify(short));
        const good = spawnSync(TSX, [SCRIPT, okFile], { encoding: 'utf8' });
        expect(good.status).to.equal(0);
        expect(good.stdout.trim().split('\n')).to.have.length(12);
        // Other group lrs than the trajectories were made with: every case must fail.
        short.hyper.group_lrs.late *= 1.5;
        const badFile = path.join(dir, 'bad.json');
        fs.writeFileSync(badFile, JSON.stringify(short));
        const bad = spawnSync(TSX, [SCRIPT, badFile], { encoding: 'utf8' });
        expect(bad.status).to.equal(1);
        const results = bad.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
        expect(results.every((r) => r.ok === false)).to.equal(true);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

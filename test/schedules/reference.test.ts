/**
 * The 13 PyTorch reference cases (copied from ../shared/reference/schedules.json), every value to rel 1e-9,
 * once through the reference-format mapping and once written directly against the public API.
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LrSchedule, evaluateReferenceCase, parseLrScheduleConfig, resolveSchedule, type ReferenceCase, type ReferenceFile } from '../../src/schedules';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'schedules.json');
const reference = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ReferenceFile;
const byName = (name: string): ReferenceCase => {
  const c = reference.cases.find((x) => x.name === name);
  if (!c) throw new Error(`fixture has no case ${name}`);
  return c;
};

function expectClose(actual: number[], expected: number[], rel = 1e-9): void {
  expect(actual.length, 'number of values').to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.abs(expected[i]);
    expect(Math.abs(actual[i] - expected[i]), `value ${i}: ${actual[i]} vs ${expected[i]}`).to.be.at.most(tol);
  }
}

describe('schedules: PyTorch reference fixture', () => {
  it('holds the 13 cases the issue names', () => {
    expect(reference.cases.map((c) => c.name)).to.have.members([
      'step',
      'multistep',
      'exponential',
      'inverseTime',
      'perStepDecay',
      'poly',
      'caffeInv',
      'cosine',
      'goyalWarmup',
      'plateau_f0.5_p2_c0',
      'plateau_f0.1_p3_c1',
      'seedPlateau_f0.5_p2_max3',
      'seedPlateau_f0.5_p1_max20',
    ]);
  });

  for (const c of reference.cases) {
    it(`${c.name}: every value to rel 1e-9${c.stopAfterEpoch !== undefined ? `, stop after epoch ${c.stopAfterEpoch}` : ''}`, () => {
      const r = evaluateReferenceCase(c);
      expect(r.error, r.error).to.equal(undefined);
      expectClose(r.lr, c.lr);
      expect(r.stopAfterEpoch).to.equal(c.stopAfterEpoch ?? null);
      expect(r.maxRelErr).to.be.at.most(1e-9);
      expect(r.ok).to.equal(true);
    });
  }

  it('goyalWarmup written directly: batch 8192, 5 epochs × 10 steps of gradual warmup, ×0.1 at epochs 30/60/80', () => {
    const c = byName('goyalWarmup');
    const cfg = parseLrScheduleConfig({
      lr: { base: 0.1, baseBatch: 256, scaling: 'linear' },
      schedule: { type: 'multistep', milestones: [30, 60, 80], gamma: 0.1 },
      // no warmup entry: the scaling rule's default (5 epochs from the unscaled base) applies
    });
    const s = new LrSchedule(resolveSchedule(cfg, { batch: 8192, stepsPerEpoch: 10, epochs: 90 }));
    const ours = Array.from({ length: 900 }, (_, step) => s.lr(step, Math.floor(step / 10)));
    expectClose(ours, c.lr);
    // Hand check: +(3.2 − 0.1)/50 = 0.062 per step.
    expect(ours[1] - ours[0]).to.be.closeTo(0.062, 1e-12);
    expect(ours[50]).to.be.closeTo(3.2, 1e-12);
  });

  it('the reference plateau cases with a reduction cap and a floor (named seedPlateau_* in its file) written directly: constant schedule + plateau stage, stop reason given', () => {
    for (const [name, patience, maxReductions] of [
      ['seedPlateau_f0.5_p2_max3', 2, 3],
      ['seedPlateau_f0.5_p1_max20', 1, 20],
    ] as const) {
      const c = byName(name);
      const cfg = parseLrScheduleConfig({
        lr: { base: 0.1, scaling: 'none' },
        plateau: { monitor: 'val_loss', factor: 0.5, patience, maxReductions }, // stopAtFraction: default 1/1024
      });
      const s = new LrSchedule(resolveSchedule(cfg, { batch: 16, stepsPerEpoch: 1, epochs: 60 }));
      const ours: number[] = [];
      let stop: { epoch: number; reason?: string } | null = null;
      for (let epoch = 0; epoch < (c.metric as number[]).length && !stop; epoch++) {
        ours.push(s.lr(epoch, epoch));
        const r = s.onEpochEnd(epoch, { val_loss: (c.metric as number[])[epoch] });
        if (r.stop) stop = { epoch, reason: r.reason };
      }
      expectClose(ours, c.lr);
      expect(stop?.epoch).to.equal(c.stopAfterEpoch);
      expect(stop?.reason).to.match(/^plateau: val_loss has not improved/);
    }
  });
});

describe('scripts/replay-schedule-reference.ts', function () {
  this.timeout(60000);
  const script = path.join(__dirname, '..', '..', 'scripts', 'replay-schedule-reference.ts');
  const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
  let dir = '';
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lt-sched-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints one ok line per case and exits 0 on the fixture', () => {
    const out = execFileSync(tsx, [script, FIXTURE], { encoding: 'utf8' });
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).to.have.length(13);
    for (const l of lines) {
      expect(Object.keys(l)).to.deep.equal(['name', 'maxRelErr', 'stopAfterEpoch', 'ok']);
      expect(l.ok, l.name).to.equal(true);
    }
    expect(lines.find((l) => l.name === 'seedPlateau_f0.5_p2_max3').stopAfterEpoch).to.equal(19);
  });

  it('exits non-zero and marks the case when a value, a stop epoch or a spec field is wrong', () => {
    const broken = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ReferenceFile;
    broken.cases[0].lr[7] *= 1 + 1e-6; // step
    const goyal = broken.cases.find((c) => c.name === 'goyalWarmup') as ReferenceCase;
    goyal.lr[899] *= 1 + 2e-9;
    (broken.cases.find((c) => c.name === 'seedPlateau_f0.5_p1_max20') as ReferenceCase).stopAfterEpoch = 30;
    (broken.cases.find((c) => c.name === 'cosine') as ReferenceCase).spec.tMaxx = 3;
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, JSON.stringify(broken));
    const r = spawnSync(tsx, [script, file], { encoding: 'utf8' });
    expect(r.status).to.equal(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const failed = lines.filter((l) => !l.ok).map((l) => l.name);
    expect(failed).to.have.members(['step', 'goyalWarmup', 'seedPlateau_f0.5_p1_max20', 'cosine']);
    expect(lines.find((l) => l.name === 'step').maxRelErr).to.be.closeTo(1e-6, 1e-9);
    expect(lines.find((l) => l.name === 'cosine').error).to.match(/tMaxx/);
  });
});

import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { referenceSpecToJob, type ReferenceFile } from '../../src/schedules/reference';
import type { VariablePlan, LayerPlan } from '../../src/train/plan';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { layertune, userLines, ROOT } from './run';

const FIXTURE: ReferenceFile = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'schedules.json'), 'utf8'));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

function planJson(args: string[]): VariablePlan[] {
  const r = layertune(['plan', '--json', '--backend', 'cpu', ...args]);
  expect(r.code, r.stderr).to.equal(0);
  return JSON.parse(r.stdout);
}

describe('layertune plan', function () {
  this.timeout(300000);
  let data: string;
  before(async () => {
    data = tmpDir('lt-plan-data-');
    await writeClassFolder(data, { a: 3, b: 3 });
  });

  it('the default job reproduces the recipe: groups 0.001/0.01/0.1 at batch 256 scaled to 16, biases 2× without decay, 5e-4 on kernels, SGD momentum 0.9', () => {
    const rows = planJson([]);
    expect(rows.length).to.be.greaterThan(80);
    const byGroup = (g: string) => rows.filter((r) => r.group === g);
    expect([...new Set(rows.map((r) => r.group))]).to.deep.equal(['g0', 'g1', 'g2']);
    const scale = 16 / 256;
    const base: Record<string, number> = { g0: 0.001, g1: 0.01, g2: 0.1 };
    for (const r of rows) {
      expect(r.frozen, r.name).to.equal(false);
      expect(r.algorithm).to.equal('momentum');
      expect(r.momentum).to.equal(0.9);
      expect(r.decayMode).to.equal('coupled');
      const want = base[r.group] * scale * (r.role === 'bias' ? 2 : 1);
      expect(rel(r.lr.start, want), `${r.name} ${r.lr.start} vs ${want}`).to.be.lessThan(1e-12);
      // constant schedule, no warmup (batch 16 < 256): the same rate throughout
      expect(r.lr.warmupEnd).to.equal(r.lr.start);
      expect(r.lr.end).to.equal(r.lr.start);
      expect(r.weightDecay, r.name).to.equal(r.role === 'kernel' ? 5e-4 : 0);
    }
    expect(byGroup('g0').some((r) => r.role === 'norm')).to.equal(true);
    const head = rows.filter((r) => r.layer === 'lt_head_dense');
    expect(head.map((r) => [r.role, r.group])).to.deep.equal([
      ['kernel', 'g2'],
      ['bias', 'g2'],
    ]);
    expect(head[1].lr.start).to.be.closeTo(0.2 * scale, 1e-15);
  });

  it('plan --json gives the schedule reference numbers (test/fixtures/schedules.json) for every base-schedule case', () => {
    const cases = FIXTURE.cases.filter((c) => !c.metric && !String(c.spec.type).startsWith('warmup+'));
    expect(cases.map((c) => c.name)).to.include.members(['step', 'multistep', 'cosine', 'poly', 'caffeInv', 'perStepDecay']);
    for (const c of cases) {
      const ref = referenceSpecToJob(c.spec, c.lr.length);
      expect(ref.run.stepsPerEpoch).to.equal(1);
      const base = (ref.config.lr as { base: number }).base;
      // one optimizer step per epoch: 6 images in one batch (clamped from 256 to the 6 images); no scaling, so the scale is 1
      const job = {
        ...ref.config,
        lr: { ...(ref.config.lr as object), scaling: 'none' },
        train: { epochs: ref.run.epochs, batch: ref.run.batch },
        groups: { strategy: 'stepped', top: base },
        data: { dir: data, valFraction: 0 },
      };
      const file = path.join(tmpDir(), `${c.name}.json`);
      fs.writeFileSync(file, JSON.stringify(job));
      const head = planJson(['--config', file]).find((r) => r.name === 'lt_head_dense/kernel')!;
      expect(rel(head.lr.start, c.lr[0]), `${c.name} start ${head.lr.start} vs ${c.lr[0]}`).to.be.lessThan(1e-9);
      expect(rel(head.lr.end, c.lr[c.lr.length - 1]), `${c.name} end ${head.lr.end} vs ${c.lr[c.lr.length - 1]}`).to.be.lessThan(1e-9);
    }
  });

  it('a batch larger than the training set (batch 1024 × accumulate 16 on 120 images) plans the batch that happens: 120, no ×64 scaling', () => {
    // issue 13: the nominal 16384 scaled every rate ×64 for a batch that never happens
    const r = layertune(['plan', '--json', '--backend', 'cpu', '--batch', '1024', '--accumulate', '16', '--epochs', '30']);
    expect(r.code, r.stderr).to.equal(0);
    const rows: VariablePlan[] = JSON.parse(r.stdout);
    const head = rows.find((x) => x.name === 'lt_head_dense/kernel')!;
    // effective batch 120 below baseBatch 256: linear scaling ×120/256, no warmup
    expect(rel(head.lr.start, (0.1 * 120) / 256)).to.be.lessThan(1e-12);
    expect(userLines(r.stderr).join('\n')).to.match(/warning: train\.batch 1024 is larger than the 120 training images; using batch 120/);
    expect(userLines(r.stderr).join('\n')).to.match(/warning: train\.accumulate 16 is more than the 1 batch\(es\) of an epoch; using 1/);
  });

  it("--by layer collapses each layer's variables, rates per role", () => {
    const r = layertune(['plan', '--json', '--by', 'layer', '--backend', 'cpu']);
    expect(r.code, r.stderr).to.equal(0);
    const layers: LayerPlan[] = JSON.parse(r.stdout);
    const head = layers.find((l) => l.layer === 'lt_head_dense')!;
    expect(head.variables).to.deep.equal(['lt_head_dense/kernel', 'lt_head_dense/bias']);
    expect(head.lr.bias!.start).to.be.closeTo(2 * head.lr.kernel!.start, 1e-15);
    expect(head.weightDecay).to.deep.equal({ kernel: 5e-4, bias: 0 });
    const bn = layers.find((l) => l.layer === 'conv1_bn')!;
    expect(Object.keys(bn.lr)).to.deep.equal(['norm']);
    expect(layers.length).to.be.lessThan(planJson([]).length);
  });
});

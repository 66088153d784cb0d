import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prepare, runJob } from '../../src/job';
import { loadCheckpoint } from '../../src/train/checkpoint/store';
import { modelWeights, type WeightCopy } from '../../src/schedules/weights';
import type { BatchInfo, Callback } from '../../src/train/callbacks';
import { fineTuneAt, planFineTune } from '../../src/train/fine-tune';
import { buildPlan } from '../../src/train/plan';
import type { GroupPlan } from '../../src/groups';
import { disposeNetwork } from '../../src/tune/parts';
import { layertune } from '../cli/run';
import { tmpDir, writeClassFolder } from '../helpers/images';
import { dataContainer, MemorySource } from '../helpers/memory-source';

class Crash extends Error {}
const crashAt = (step: number): Callback => ({
  beforeStep(s) {
    if (s.step === step) throw new Crash(`simulated crash before step ${step}`);
  },
});
const bytes = (f: string) => fs.readFileSync(f);

/** The names each optimizer step's forward passes computed gradients for, read where the loop hands them out. */
function gradientNames(): { recorder: Callback; byStep: Map<number, string[]> } {
  const byStep = new Map<number, string[]>();
  const recorder: Callback = {
    afterBackward(b) {
      const names = Object.keys(b.grads).sort();
      const seen = byStep.get(b.step);
      if (seen) expect(names, `step ${b.step}: every forward pass of a step differentiates the same variables`).to.deep.equal(seen);
      else byStep.set(b.step, names);
    },
  };
  return { recorder, byStep };
}

/**
 * Phase 1's gradients are exactly the trainable variables less the plan's frozen-phase ones (head and BatchNorm γ/β
 * only, no body kernel), phase 2's every trainable variable.
 */
function expectPhaseGradients(byStep: Map<number, string[]>, plan: GroupPlan, frozenFirst: string[], steps: number[]): void {
  const trainable = plan.rows
    .filter((r) => !r.frozen && r.paramGroup !== null)
    .map((r) => r.name)
    .sort();
  const held = new Set(frozenFirst);
  const phaseOne = trainable.filter((n) => !held.has(n));
  expect(
    phaseOne.every((n) => isHead(n) || isBnAffine(n)),
    'phase 1 trains the head and BatchNorm γ/β alone',
  ).to.equal(true);
  expect(phaseOne.length).to.be.lessThan(trainable.length);
  expect([...byStep.keys()]).to.deep.equal(steps);
  for (const [step, names] of byStep) expect(names, `step ${step}`).to.deep.equal(step < 6 ? phaseOne : trainable);
}

/** PyTorch OneCycleLR's two-phase cosine rate relative to the peak, written out from its documentation. */
function handOneCycle(step: number, total: number, pct: number, div: number, finalDiv: number): number {
  const initial = 1 / div;
  const min = initial / finalDiv;
  const upEnd = pct * total - 1;
  const cosAnneal = (start: number, end: number, t: number) => end + ((start - end) / 2) * (Math.cos(Math.PI * t) + 1);
  if (step <= upEnd) return cosAnneal(initial, 1, step / upEnd);
  return cosAnneal(1, min, (step - upEnd) / (total - 1 - upEnd));
}

const isHead = (name: string) => name.startsWith('lt_head');
const isBn = (name: string) => /_bn\//.test(name);
const isBnAffine = (name: string) => /_bn\/(gamma|beta)$/.test(name);

describe('fastai fine_tune: a frozen phase, then everything unfrozen (train.freezeEpochs, recipe fastai)', function () {
  this.timeout(600000);
  // 12 training images at batch 4: 3 steps per epoch
  const source = () => new MemorySource(['a', 'b'], 6, 2);
  const job = (out: string) => ({
    recipe: 'fastai',
    model: { size: 32 },
    train: { epochs: 2, freezeEpochs: 2, batch: 4, seed: 3, threads: 1 },
    backend: 'wasm',
    out,
    checkpoint: { everyEpochs: 1 },
  });

  it('the plan: phase 1 runs the head group at 2× its rate and the body at a tenth of that; phase 2 the geometric rates', async () => {
    const p = await prepare(job(tmpDir('lt-ft-plan-')), { container: dataContainer(source), log: () => {} });
    try {
      const ft = planFineTune(p.job, p.plan, p.stepsPerEpoch);
      const [one, two] = ft.phases;
      expect(p.stepsPerEpoch).to.equal(3);
      expect([one.firstStep, one.steps, two.firstStep, two.steps]).to.deep.equal([0, 6, 6, 6]);
      expect(one.cycle).to.deep.include({ pctStart: 0.99, divFactor: 25, finalDivFactor: (5 * 2e4) / 25 });
      expect(two.cycle).to.deep.include({ pctStart: 0.3, divFactor: 5, finalDivFactor: 2e4 });
      // fastai's slice(1e-5, 1e-3) over three groups: 1e-5, 1e-4, 1e-3 (biases and BN at 1x)
      const groupOf = new Map(p.plan.rows.map((r) => [r.paramGroup, r.group]));
      for (const g of p.plan.groups) {
        const layerGroup = groupOf.get(g.name)!;
        const expected = { g0: 1e-5, g1: 1e-4, g2: 1e-3 }[layerGroup]!;
        expect(two.rates[g.name], g.name).to.be.closeTo(expected, expected * 1e-9);
        expect(one.rates[g.name], g.name).to.be.closeTo(layerGroup === 'g2' ? 2e-3 : 2e-4, 1e-12);
      }
      // momentum (Adam's beta1) runs 0.95 → 0.85 → 0.95 within each phase: at the start of each, and at phase 1's peak
      const hi = 0.95;
      const lo = 0.85;
      expect(fineTuneAt(ft, 0).momentum).to.be.closeTo(hi, 1e-12);
      expect(fineTuneAt(ft, 6).momentum).to.be.closeTo(hi, 1e-12);
      // phase 1's rise ends at 0.99·6 − 1 = 4.94: step 4 is at 4/4.94 of it, the momentum mirrors the rate
      const t = 4 / 4.94;
      expect(fineTuneAt(ft, 4).momentum).to.be.closeTo(lo + ((hi - lo) / 2) * (Math.cos(Math.PI * t) + 1), 1e-12);
      // `plan`: both phases' lines; the table's three points are the unfrozen phase's start, peak and last step
      const jp = buildPlan(p);
      expect(jp.fineTune?.lines).to.have.length(2);
      expect(jp.fineTune!.lines[0]).to.match(
        /^frozen phase: 2 epoch\(s\) = 6 steps from step 0, head and BatchNorm γ\/β only; one-cycle pct_start 0\.99, div 25/,
      );
      expect(jp.fineTune!.lines[1]).to.contain('unfrozen phase: 2 epoch(s) = 6 steps from step 6, everything');
      const cycle2 = [0, 1, 2, 3, 4, 5].map((k) => handOneCycle(k, 6, 0.3, 5, 2e4));
      expect(jp.factors.start).to.be.closeTo(0.2, 1e-12);
      expect(jp.factors.warmupEnd).to.be.closeTo(Math.max(...cycle2), 1e-12);
      expect(jp.factors.end).to.be.closeTo(0.2 / 2e4, 1e-15);
      const head = jp.variables.find((v) => v.name === 'lt_head_dense/kernel')!;
      expect(head.lr.end).to.be.closeTo(1e-3 * 1e-5, 1e-18);
      expect(ft.frozenFirst.length).to.be.greaterThan(0);
      expect(ft.frozenFirst.some((v) => isHead(v) || isBnAffine(v))).to.equal(false);
    } finally {
      disposeNetwork(p.network);
    }
  });

  it('trains: phase 1 leaves every body weight but BatchNorm byte-identical, phase 2 moves them; rates are the two one-cycles; resume is bit-exact in either phase', async () => {
    const init = await prepare(job(tmpDir('lt-ft-init-')), { container: dataContainer(source), log: () => {} });
    const initial = new Map(
      modelWeights(init.network.train)
        .read()
        .map((w) => [w.name, Buffer.from(new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength))]),
    );
    disposeNetwork(init.network);

    // the uninterrupted run, with every step's per-group rates recorded
    const steps: BatchInfo[] = [];
    const recorder: Callback = { afterStep: (b) => void steps.push({ ...b, lrs: { ...b.lrs } }) };
    const grads = gradientNames();
    const a = tmpDir('lt-ft-a-');
    const logs: string[] = [];
    const full = await runJob(job(a), { container: dataContainer(source), callbacks: [recorder, grads.recorder], log: (l) => void logs.push(l) });
    expect(full.fit.epochs).to.equal(4);
    // the frozen phase's body kernels are left out of the gradient computation, not computed and dropped
    expectPhaseGradients(grads.byStep, full.plan, planFineTune(full.job, full.plan, 3).frozenFirst, [...Array(12).keys()]);
    expect(logs.some((l) => l.startsWith('fine-tune: frozen phase: 2 epoch(s) = 6 steps'))).to.equal(true);
    // flat within each phase; at the change, exactly the two Adam slots of each weight that starts training (the
    // optimizer creates state on a weight's first step, as PyTorch's does), and nothing else
    const counts = full.fit.history.map((h) => h.numTensors);
    const withheld = planFineTune(full.job, full.plan, 3).frozenFirst.length;
    expect(counts, `numTensors per epoch ${counts}`).to.deep.equal([counts[0], counts[0], counts[0] + 2 * withheld, counts[0] + 2 * withheld]);

    // hand computation: phase 1 = 6 steps at pct 0.99, div 25; phase 2 = 6 steps at pct 0.3, div 5; final at peak/1e5
    expect(steps.map((s) => s.step)).to.deep.equal([...Array(12).keys()]);
    const groupOf = new Map(full.plan.rows.map((r) => [r.paramGroup, r.group]));
    for (const s of steps) {
      for (const [g, lr] of Object.entries(s.lrs)) {
        const layerGroup = groupOf.get(g)!;
        const expected =
          s.step < 6
            ? (layerGroup === 'g2' ? 2e-3 : 2e-4) * handOneCycle(s.step, 6, 0.99, 25, 4000)
            : { g0: 1e-5, g1: 1e-4, g2: 1e-3 }[layerGroup]! * handOneCycle(s.step - 6, 6, 0.3, 5, 2e4);
        expect(lr, `step ${s.step} group ${g}`).to.be.closeTo(expected, expected * 1e-9);
      }
    }

    // interrupted in phase 1 (resumed from the epoch-0 checkpoint), stopped at the phase change, interrupted in phase 2
    const b = tmpDir('lt-ft-b-');
    const quiet = { container: dataContainer(source), log: () => {} };
    const crash = (p: Promise<unknown>) =>
      p.then(
        () => expect.fail('the crash should have stopped the run'),
        (e) => expect(e).to.be.instanceOf(Crash),
      );
    await crash(runJob(job(b), { ...quiet, callbacks: [crashAt(4)] }));
    await crash(runJob({}, { ...quiet, resume: b, callbacks: [crashAt(6)] }));

    // the checkpoint at the end of phase 1: only the head and BatchNorm moved
    const endOfOne = loadCheckpoint(path.join(b, 'checkpoints', 'last'));
    expect(endOfOne.trainer.step).to.equal(6);
    const changed = (w: WeightCopy) => !Buffer.from(new Uint8Array(w.values.buffer, w.values.byteOffset, w.values.byteLength)).equals(initial.get(w.name)!);
    const body = endOfOne.weights.filter((w) => !isHead(w.name) && !isBn(w.name));
    expect(body.length).to.be.greaterThan(20);
    expect(body.filter(changed).map((w) => w.name)).to.deep.equal([]);
    expect(endOfOne.weights.filter((w) => isHead(w.name)).every(changed)).to.equal(true);
    // fastai's train_bn: BatchNorm γ/β of the frozen body still train
    expect(endOfOne.weights.filter((w) => isBnAffine(w.name)).some(changed)).to.equal(true);
    // no optimizer state for a withheld variable: it starts phase 2 fresh, as fastai's frozen parameters do
    expect(body.filter((w) => endOfOne.optimizer.vars[w.name] !== undefined).map((w) => w.name)).to.deep.equal([]);

    await crash(runJob({}, { ...quiet, resume: b, callbacks: [crashAt(10)] }));
    await runJob({}, { ...quiet, resume: b });
    for (const f of ['model/weights.bin', 'checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin']) {
      expect(bytes(path.join(b, f)).equals(bytes(path.join(a, f))), f).to.equal(true);
    }

    // phase 2 moved every body weight
    const end = loadCheckpoint(path.join(a, 'checkpoints', 'last'));
    expect(end.weights.filter((w) => !isHead(w.name) && !isBn(w.name) && !changed(w)).map((w) => w.name)).to.deep.equal([]);
  });

  it("on two gradient threads the workers too differentiate only the phase's variables, and phase 1 leaves the body byte-identical", async () => {
    const two = (out: string) => ({ ...job(out), train: { ...job(out).train, threads: 2 } });
    const init = await prepare(two(tmpDir('lt-ft-init2-')), { container: dataContainer(source), log: () => {} });
    const initial = new Map(
      modelWeights(init.network.train)
        .read()
        .map((w) => [w.name, Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)]),
    );
    disposeNetwork(init.network);
    const grads = gradientNames();
    const out = tmpDir('lt-ft-two-');
    const logs: string[] = [];
    // stopped at the phase change, after step 6's forward pass (phase 2's first): the last checkpoint holds the
    // weights phase 1 ends with
    await runJob(two(out), { container: dataContainer(source), callbacks: [grads.recorder, crashAt(6)], log: (l) => void logs.push(l) }).then(
      () => expect.fail('the crash should have stopped the run'),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    expect(
      logs.some((l) => l.startsWith('threads: ')),
      'the gradient workers ran',
    ).to.equal(true);
    const p = await prepare(two(tmpDir('lt-ft-plan2-')), { container: dataContainer(source), log: () => {} });
    try {
      expectPhaseGradients(grads.byStep, p.plan, planFineTune(p.job, p.plan, p.stepsPerEpoch).frozenFirst, [0, 1, 2, 3, 4, 5, 6]);
    } finally {
      disposeNetwork(p.network);
    }
    const endOfOne = loadCheckpoint(path.join(out, 'checkpoints', 'last'));
    expect(endOfOne.trainer.step).to.equal(6);
    const moved = endOfOne.weights.filter(
      (w) => !isHead(w.name) && !isBn(w.name) && !Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength).equals(initial.get(w.name)!),
    );
    expect(moved.map((w) => w.name)).to.deep.equal([]);
  });

  it('the CLI (through dist): `plan --recipe fastai` prints both phases, `train --recipe fastai` runs them', async () => {
    const data = tmpDir('lt-ft-cli-data-');
    await writeClassFolder(data, { a: 4, b: 4 });
    const plan = layertune(['plan', '--recipe', 'fastai', '--data', data, '--size', '32', '--batch', '4', '--backend', 'cpu']);
    expect(plan.code, plan.stderr).to.equal(0);
    expect(plan.stdout).to.match(/fine-tune frozen phase: 1 epoch\(s\) = \d+ steps from step 0, head and BatchNorm γ\/β only/);
    expect(plan.stdout).to.match(/fine-tune unfrozen phase: 5 epoch\(s\)/);
    const out = tmpDir('lt-ft-cli-out-');
    const train = layertune([
      'train',
      '--recipe',
      'fastai',
      '--data',
      data,
      '--size',
      '32',
      '--batch',
      '4',
      '--epochs',
      '1',
      '--out',
      out,
      '--backend',
      'wasm',
    ]);
    expect(train.code, train.stderr).to.equal(0);
    expect(train.stdout).to.contain('fine-tune: frozen phase: 1 epoch(s)');
    expect(train.stdout).to.match(/epoch 2\/2/);
    expect(fs.existsSync(path.join(out, 'model', 'model.json'))).to.equal(true);
  });

  it('refuses in one line a two-phase job whose schedule is not one-cycle, or that adds a warmup or a plateau stage, and trains nothing', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ schedule: { type: 'constant' } }, /^train\.freezeEpochs: fastai's fine_tune runs one-cycle in both phases/],
      // the one-cycle schedule refuses a warmup of its own already
      [{ warmup: { type: 'linear', epochs: 1 } }, /^warmup: a onecycle schedule warms up by itself/],
      [{ plateau: {} }, /^plateau: reduce-on-plateau does not compose/],
    ];
    for (const [extra, message] of cases) {
      const out = tmpDir('lt-ft-bad-');
      // runJob refuses before the first step: no checkpoint, no export
      await runJob({ ...job(out), ...extra }, { container: dataContainer(source), log: () => {} }).then(
        () => expect.fail('the job should have been refused'),
        (e) => expect((e as Error).message).to.match(message),
      );
      expect(fs.existsSync(path.join(out, 'checkpoints'))).to.equal(false);
      expect(fs.existsSync(path.join(out, 'model'))).to.equal(false);
    }
  });
});

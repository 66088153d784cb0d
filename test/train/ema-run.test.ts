import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runJob } from '../../src/job';
import type { JobInput } from '../../src/config/schema';
import { loadCheckpoint } from '../../src/train/checkpoint/store';
import { modelWeights, type WeightSnapshot } from '../../src/schedules/weights';
import type { EmaState } from '../../src/train/ema';
import { LoopTrainerFactory } from '../../src/train/build';
import { CancelStep, type Callback } from '../../src/train/callbacks';
import { MemorySource, dataContainer, prepareGuardJob } from '../helpers/memory-source';
import { Trainer } from '../../src/train/trainer';
import { WeightEma } from '../../src/train/ema';
import { EmaSchema } from '../../src/data/augment-schema';
import { GuardSchema } from '../../src/train/guard';
import { tmpDir } from '../helpers/images';
import { tinyTrainerOptions } from '../helpers/trainer';

const quiet = { log: () => undefined };
class Crash extends Error {}

/** 12 train / 4 val images, batch 4: 3 steps an epoch; BatchNorm on batch statistics so the moving ones move. */
const job = (out: string, ema: Record<string, unknown>, epochs = 2): JobInput =>
  ({ model: { size: 32 }, train: { epochs, batch: 4, seed: 3 }, backend: 'wasm', out, ema }) as JobInput;

/** The weights of an export's weights.bin by name (float32 only: the export is not quantized here). */
function exportedWeights(dir: string): Map<string, Buffer> {
  const model = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(dir, 'weights.bin'));
  const out = new Map<string, Buffer>();
  let off = 0;
  for (const s of model.weightsManifest[0].weights as Array<{ name: string; shape: number[]; dtype: string }>) {
    const n = 4 * s.shape.reduce((a, b) => a * b, 1);
    out.set(s.name, bin.subarray(off, off + n));
    off += n;
  }
  return out;
}

function expectExportHolds(dir: string, snap: WeightSnapshot): void {
  const exported = exportedWeights(dir);
  expect(exported.size).to.be.greaterThan(0);
  const byName = new Map(snap.map((w) => [w.name, w]));
  for (const [name, bytes] of exported) {
    const w = byName.get(name);
    expect(w, `${name} in the snapshot`).to.not.equal(undefined);
    expect(bytes.equals(Buffer.from(w!.values.buffer, w!.values.byteOffset, w!.values.byteLength)), name).to.equal(true);
  }
}

describe('weight EMA in a run', function () {
  this.timeout(300000);
  const source = () => new MemorySource(['a', 'b'], 6, 2);

  it('validates on the EMA: the epoch metrics equal evaluate() on a model holding the EMA weights, numTensors flat', async () => {
    const out = tmpDir('lt-ema-val-');
    const data = source();
    const r = await runJob(job(out, { decay: 0.9, export: 'raw' }, 3), { ...quiet, container: dataContainer(() => data) });
    const counts = r.fit.history.map((h) => h.numTensors);
    expect(new Set(counts).size, `numTensors per epoch ${counts}`).to.equal(1);
    expect(r.fit.history.every((h) => h.valWeights === 'ema')).to.equal(true);
    const ck = loadCheckpoint(path.join(out, 'checkpoints', 'last'));
    const ckEma = ck.ema as EmaState;
    expect(ckEma.updates).to.equal(9);
    // a plain evaluation trainer (no EMA of its own) over the network with the EMA weights written in
    const evalOn = async (weights: WeightSnapshot) => {
      modelWeights(r.network.train).write(weights);
      const t = new LoopTrainerFactory().create(
        { job: r.job, backend: { tfBackend: 'wasm' }, data, network: r.network, cachedStages: r.cachedStages, trainableVars: {} },
        { spillDir: null },
      );
      return (await t.evaluate(data.val)).metrics;
    };
    const last = r.fit.history[2].val!;
    const onEma = await evalOn(ckEma.weights);
    expect(onEma.loss).to.be.closeTo(last.loss, 1e-6);
    expect(onEma.accuracy).to.equal(last.accuracy);
    // the raw weights give another loss: the equality above is not vacuous
    const onRaw = await evalOn(ck.weights);
    expect(Math.abs(onRaw.loss - last.loss)).to.be.greaterThan(1e-4);
    // the end-of-run summary is the EMA's too, and says so
    expect(r.val!.loss).to.be.closeTo(last.loss, 1e-6);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.ema).to.deep.include({ weights: 'raw', decay: 0.9, warmup: true, updates: 9 });
    const epochs = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.type === 'epoch');
    expect(epochs.map((e) => e.valWeights)).to.deep.equal(['ema', 'ema', 'ema']);
    // export: raw holds the trained weights, byte for byte, and metadata.json says which
    expectExportHolds(r.exportDir, ck.weights);
    const meta = JSON.parse(fs.readFileSync(path.join(r.exportDir, 'metadata.json'), 'utf8'));
    expect(meta.ema).to.deep.include({ weights: 'raw', decay: 0.9 });
  });

  it('exports the EMA weights byte for byte by default, and records it in metadata.json', async () => {
    const out = tmpDir('lt-ema-exp-');
    const r = await runJob(job(out, { decay: 0.8 }), { ...quiet, container: dataContainer(source) });
    const ck = loadCheckpoint(path.join(out, 'checkpoints', 'last'));
    const ckEma = ck.ema as EmaState;
    expectExportHolds(r.exportDir, ckEma.weights);
    // not the raw ones (the average moved away from them)
    const raw = exportedWeights(r.exportDir);
    const differs = ck.weights.some((w) => raw.has(w.name) && !raw.get(w.name)!.equals(Buffer.from(w.values.buffer, w.values.byteOffset, w.values.byteLength)));
    expect(differs).to.equal(true);
    const meta = JSON.parse(fs.readFileSync(path.join(r.exportDir, 'metadata.json'), 'utf8'));
    expect(meta.ema).to.deep.include({ weights: 'ema', decay: 0.8, warmup: true, updates: 6 });
  });

  it('a cancelled step (the veto) does not reach the average', async () => {
    const out = tmpDir('lt-ema-veto-');
    let applied = 0;
    let vetoed = 0;
    let calls = 0;
    // every second step is vetoed: 6 steps asked for over 2 epochs of 3, 3 applied
    const veto: Callback = {
      beforeStep() {
        if (++calls % 2 === 0) {
          vetoed++;
          throw new CancelStep('test veto');
        }
      },
      afterStep() {
        applied++;
      },
    };
    await runJob(job(out, { decay: 0.9 }), { ...quiet, container: dataContainer(source), callbacks: [veto] });
    const ck = loadCheckpoint(path.join(out, 'checkpoints', 'last'));
    const ckEma = ck.ema as EmaState;
    expect(vetoed).to.equal(3);
    expect(applied).to.equal(3);
    expect(ckEma.updates).to.equal(applied);
    expect(ck.trainer.step).to.equal(applied);
  });

  it('resumes bit for bit with the EMA on: weights, optimizer and averages of a killed-and-resumed run equal the whole run', async () => {
    const crashAt = (step: number): Callback => ({
      afterStep(b) {
        if (b.step === step) throw new Crash(`simulated crash at step ${step}`);
      },
    });
    const a = tmpDir('lt-ema-ra-');
    await runJob(job(a, { decay: 0.9 }, 3), { ...quiet, container: dataContainer(source) });
    const b = tmpDir('lt-ema-rb-');
    await runJob(job(b, { decay: 0.9 }, 3), { ...quiet, container: dataContainer(source), callbacks: [crashAt(4)] }).then(
      () => expect.fail('the crash did not happen'),
      (e) => expect(e).to.be.instanceOf(Crash),
    );
    expect((loadCheckpoint(path.join(b, 'checkpoints', 'last')).ema as EmaState).updates).to.equal(3);
    await runJob({}, { ...quiet, resume: b, container: dataContainer(source) });
    const bytes = (f: string) => fs.readFileSync(f);
    // weights.bin holds the model's weights and the EMA's (under `ema:`): both equal, bit for bit, and so does the export
    for (const f of ['checkpoints/last/weights.bin', 'checkpoints/last/optimizer.bin', 'model/weights.bin']) {
      expect(bytes(path.join(b, f)).equals(bytes(path.join(a, f))), f).to.equal(true);
    }
    const ea = loadCheckpoint(path.join(a, 'checkpoints', 'last')).ema as EmaState;
    const eb = loadCheckpoint(path.join(b, 'checkpoints', 'last')).ema as EmaState;
    expect(eb.updates).to.equal(ea.updates);
    expect(ea.weights.length).to.be.greaterThan(0);
    expect(ea.weights.some((w) => /moving_mean/.test(w.name))).to.equal(true);
  });

  it('the divergence guard rolls the average back with the weights: the wrecked step never stays in the EMA', async () => {
    const data = new MemorySource(['a', 'b'], 8, 2);
    const p = await prepareGuardJob(data, 2);
    const opt = p.stages.optimizer.create(p.plan.groups, p.job);
    const ema = new WeightEma(p.network.train, EmaSchema.parse({ decay: 0.5, warmup: false }));
    let afterStep1: EmaState | null = null;
    let atRollback: EmaState | null = null;
    const lines: string[] = [];
    const trainer = new Trainer(
      tinyTrainerOptions(p, {
        optimizer: opt,
        // step 2 runs at a million times the rate: the weights it leaves are wrecked, and step 3's loss shows it
        lr: { factor: (step) => (step === 2 ? 1e6 : 1) },
        // after the EMA's own update (CALLBACK_ORDER.ema < DEFAULT)
        callbacks: [{ afterStep: (b) => void (b.step === 1 ? (afterStep1 = ema.getState()) : undefined) }],
        flip: true,
        guard: GuardSchema.parse({ snapshotEvery: 1 }),
        ema,
        log: (l) => {
          lines.push(l);
          atRollback ??= ema.getState();
        },
      }),
    );
    const fit = await trainer.fit();
    opt.dispose();
    expect(fit.guardEvents, lines.join('\n')).to.have.length(1);
    const a = afterStep1 as EmaState | null;
    const b = atRollback as EmaState | null;
    expect(b!.updates).to.equal(2);
    expect(b!.updates).to.equal(a!.updates);
    b!.weights.forEach((w, i) => expect(Buffer.from(w.values.buffer).equals(Buffer.from(a!.weights[i].values.buffer)), w.name).to.equal(true));
    // and what the run ends with is a finite average of the steps that stayed applied
    // the trainer's step count keeps the rolled-back step 2; the average counts only the steps that stayed applied
    expect(ema.steps).to.equal(trainer.step - 1);
    expect(ema.read().every((w) => Array.from(w.values).every(Number.isFinite))).to.equal(true);
    ema.dispose();
  });
});

/**
 * The state protocol and the on-disk layout: a version-1 checkpoint written by the checkpoint code before the
 * registry existed (test/fixtures/checkpoint-v1, see make-v1.ts.txt there) loads value for value, restores into
 * real parts through a StateRegistry, and is written back byte for byte.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint/store';
import { CHECKPOINT_VERSION, type Checkpoint } from '../../src/train/checkpoint/format';
import { BestTracker, TrackerJudge } from '../../src/train/checkpoint/best';
import { modelWeights } from '../../src/schedules/weights';
import { EarlyStopping } from '../../src/schedules/early-stopping';
import { EarlyStoppingSchema, LrSchedule, parseLrScheduleConfig, resolveSchedule } from '../../src/schedules';
import { Rng } from '../../src/data/rng';
import { StateRegistry, type Stateful } from '../../src/stateful';
import { ConfigError } from '../../src/errors';
import { tinyCheckpoint } from '../helpers/checkpoint';
import { tmpDir } from '../helpers/images';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'checkpoint-v1', 'last');
const f32 = (xs: number[]) => new Float32Array(xs);
const bits = (v: ArrayBufferView) => Buffer.from(v.buffer, v.byteOffset, v.byteLength);

/** A part that only holds what it is given: stands in for the trainer, which needs a whole network. */
class Holder<S> implements Stateful<S> {
  constructor(
    readonly stateKey: string,
    public value: S,
  ) {}
  getState(): S {
    return this.value;
  }
  setState(s: S): void {
    this.value = s;
  }
}

describe('checkpoint format and state registry', () => {
  it('reads a version-1 checkpoint written before the registry, value for value (the fixture was made by that code)', () => {
    expect(CHECKPOINT_VERSION).to.equal(1);
    const ck = loadCheckpoint(FIXTURE);
    expect(ck.trainer).to.include({ epoch: 2, step: 6, rng: 2654435769, stoppedEarly: null });
    expect(ck.trainer.guard).to.deep.equal({ multiplier: 0.5, retries: 1, recent: [0.75, 0.5], events: [] });
    expect(ck.schedule.plateau).to.include({ multiplier: 0.5, reductions: 1, best: 0.25 });
    expect(ck.earlyStopping).to.deep.equal({ best: 0.5, bestEpoch: 1, wait: 0, stoppedEpoch: null });
    expect(ck.best).to.deep.equal({ monitor: 'val_loss', mode: 'min', value: 0.5, epoch: 1 });
    expect(ck.weights.map((w) => [w.name, w.dtype, w.shape])).to.deep.equal([
      ['dense/kernel', 'float32', [2, 2]],
      ['dense/bias', 'float32', [2]],
      ['counter', 'int32', [3]],
    ]);
    expect(bits(ck.weights[0].values).equals(bits(f32([0.5, -1.25, 3.0e-8, 1024.125])))).to.equal(true);
    expect(Array.from(ck.weights[2].values)).to.deep.equal([1, -2, 2147483647]);
    // the early-stopping copy comes back under the model's names (the `es:` prefix is the file's business)
    expect(ck.earlyStoppingBest!.map((w) => w.name)).to.deep.equal(['dense/kernel', 'dense/bias', 'counter']);
    expect(Array.from(ck.earlyStoppingBest![0].values)).to.deep.equal([0.25, -1, 2, 4]);
    expect(ck.optimizer.algorithm).to.equal('momentum');
    expect(Array.from(ck.optimizer.vars['dense/bias'].slots.momentum.values)).to.deep.equal([-0.5, 0.125]);
    expect(ck.provenance).to.equal(null);
  });

  it('a v1 checkpoint saved again by the registry code is the same files: binaries byte for byte, state.json field for field', async () => {
    const dir = path.join(tmpDir('lt-ckv1-'), 'last');
    await saveCheckpoint(dir, loadCheckpoint(FIXTURE));
    for (const f of ['weights.bin', 'optimizer.bin'])
      expect(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(FIXTURE, f))), f).to.equal(true);
    const strip = (f: string) => {
      const s = JSON.parse(fs.readFileSync(path.join(f, 'state.json'), 'utf8'));
      delete s.createdAt;
      return s;
    };
    // key order included: the layout did not move
    expect(JSON.stringify(strip(dir))).to.equal(JSON.stringify(strip(FIXTURE)));
  });

  it('restores the v1 checkpoint into real parts through a StateRegistry, and captures the same states back', () => {
    const input = tf.input({ shape: [2] });
    const model = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 2, name: 'dense' }).apply(input) as tf.SymbolicTensor });
    const weights = modelWeights(model);
    const cfg = parseLrScheduleConfig({ lr: { base: 0.1, scaling: 'none' }, plateau: { monitor: 'val_loss', patience: 1 } });
    const schedule = new LrSchedule(resolveSchedule(cfg, { batch: 2, stepsPerEpoch: 3, epochs: 4 }));
    expect(schedule.factor(0, 0)).to.equal(1);
    const es = new EarlyStopping(EarlyStoppingSchema.parse({ monitor: 'val_loss', restoreBestWeights: true }), weights);
    const best = new TrackerJudge(new BestTracker(BestTracker.initial('val_loss', 'min')));
    const trainer = new Holder('trainer', null as unknown);
    const optimizer = new Holder('optimizer', null as unknown);
    const reg = new StateRegistry().add(trainer, schedule, es, es.bestWeightsState, best, weights, optimizer);
    const ck = loadCheckpoint(FIXTURE);
    reg.restore(ck, ['trainer', 'schedule', 'weights', 'optimizer']);
    expect(model.getWeights()[0].dataSync()).to.deep.equal(f32([0.5, -1.25, 3.0e-8, 1024.125]));
    expect(schedule.factor(0, 0)).to.equal(0.5); // the plateau's ×0.5 came back
    expect(es.getState()).to.deep.equal(ck.earlyStopping);
    // restoreBestWeights's copy came back too: the end of training writes it into the model
    expect(es.onTrainEnd()).to.deep.equal({ restored: true, bestEpoch: 1 });
    expect(model.getWeights()[0].dataSync()).to.deep.equal(f32([0.25, -1, 2, 4]));
    const again = reg.capture();
    expect(again.best).to.deep.equal(ck.best);
    expect(again.schedule).to.deep.equal(ck.schedule);
    expect(again.trainer).to.deep.equal(ck.trainer);
    expect(reg.keys).to.deep.equal(['trainer', 'schedule', 'earlyStopping', 'earlyStoppingBest', 'best', 'weights', 'optimizer']);
    model.dispose();
  });

  it('a registered part of the user is saved under its key and restored; reserved, doubled and binary parts are refused', async () => {
    const counter = new Holder('myCounter', { seen: 0 });
    const rng = new Rng(42);
    rng.next();
    const ck = {
      ...tinyCheckpoint({ weights: [], optimizer: { algorithm: 'sgd', step: 0, vars: {} } }),
      ...new StateRegistry().add(counter, rng).capture(),
    } as Checkpoint;
    counter.value = { seen: 7 };
    const saved = { ...ck, myCounter: { seen: 7 } };
    const dir = path.join(tmpDir('lt-ckpart-'), 'last');
    await saveCheckpoint(dir, saved);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).myCounter).to.deep.equal({ seen: 7 });
    const fresh = new Holder('myCounter', { seen: 0 });
    const freshRng = new Rng(1);
    new StateRegistry().add(fresh, freshRng).restore(loadCheckpoint(dir));
    expect(fresh.value).to.deep.equal({ seen: 7 });
    expect(freshRng.getState()).to.equal(rng.getState());
    expect(freshRng.next()).to.equal(rng.next());

    expect(() => new StateRegistry().add(new Holder('job', 1))).to.throw(/reserved/);
    expect(() => new StateRegistry().add(new Holder('a', 1), new Holder('a', 2))).to.throw(/share the state key "a"/);
    await saveCheckpoint(path.join(tmpDir(), 'x'), { ...ck, raw: { values: f32([1]) } }).then(
      () => expect.fail('a typed array outside the weights and optimizer parts must be refused'),
      (e) => expect((e as Error).message).to.match(/raw\.values is a typed array/),
    );
    // a required part missing from the checkpoint is a resume error, not a silently fresh part
    expect(() => new StateRegistry().add(new Holder('weights', [])).restore({ weights: null }, ['weights'])).to.throw(ConfigError, /no "weights" state/);
  });
});

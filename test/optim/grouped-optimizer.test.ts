import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../src/errors';
import { ALGORITHMS, GroupedOptimizer, type Algorithm, type ParamGroup } from '../../src/optim';

function makeVars(spec: Record<string, number[]>): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = tf.tidy(() => tf.variable(tf.tensor1d(v), true));
  return out;
}

/** Deterministic gradient of 0.5·Σ c_i·w_i² + Σ b_i·w_i, so every algorithm sees a changing gradient. */
function gradsOf(vars: Record<string, tf.Variable>): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(vars)) {
    out[k] = tf.tidy(() => tf.add(tf.mul(v, tf.linspace(0.5, 1.5, v.size)), tf.linspace(-0.3, 0.2, v.size)));
  }
  return out;
}

function values(v: tf.Tensor): number[] {
  return Array.from(v.dataSync());
}

function expectClose(got: number[], want: number[], rtol = 2e-6, atol = 1e-8): void {
  expect(got).to.have.length(want.length);
  got.forEach((g, i) => {
    expect(Math.abs(g - want[i]), `index ${i}: ${g} vs ${want[i]}`).to.be.at.most(atol + rtol * Math.abs(want[i]));
  });
}

const GROUPS = (): ParamGroup[] => [
  { name: 'a', params: ['k1', 'b1'], lr: 0.05, weightDecay: 0.01, decayMode: 'coupled' },
  { name: 'b', params: ['k2'], lr: 0.2, weightDecay: 0, decayMode: 'coupled' },
];
const WDECOUPLED = (): ParamGroup[] => GROUPS().map((g) => ({ ...g, decayMode: 'decoupled' }));

describe('GroupedOptimizer', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  describe('memory', () => {
    for (const algorithm of ALGORITHMS) {
      it(`${algorithm}: numTensors flat across steps, with and without norms; dispose frees all slots`, () => {
        const vars = makeVars({ k1: [0.5, -1, 2], b1: [0.1, 0.2], k2: [1, 2, 3, 4] });
        const groups = algorithm.endsWith('w') ? WDECOUPLED() : GROUPS();
        const baseline = tf.memory().numTensors;
        const opt = new GroupedOptimizer(groups, { algorithm, centered: algorithm === 'rmsprop', momentum: algorithm === 'sgd' ? 0 : 0.9 });
        const run = (n: number, norms: boolean) => {
          for (let i = 0; i < n; i++) {
            const g = gradsOf(vars);
            opt.step(g, vars, 0.5, { norms });
            tf.dispose(Object.values(g));
          }
        };
        run(2, false); // slots now exist
        const afterWarm = tf.memory().numTensors;
        run(5, false);
        expect(tf.memory().numTensors).to.equal(afterWarm);
        run(5, true);
        expect(tf.memory().numTensors).to.equal(afterWarm);
        opt.dispose();
        expect(tf.memory().numTensors).to.equal(baseline);
        tf.dispose(Object.values(vars));
      });
    }
  });

  describe('update rules against hand computation', () => {
    it('momentum with coupled decay: buf = g first, then m·buf + g; w -= lr·buf (PyTorch)', () => {
      const vars = makeVars({ w: [1, -2] });
      const opt = new GroupedOptimizer([{ name: 'g', params: ['w'], lr: 0.1, weightDecay: 0.5, decayMode: 'coupled' }], {
        algorithm: 'momentum',
        momentum: 0.9,
      });
      let w = [1, -2];
      let buf: number[] | null = null;
      for (let t = 0; t < 3; t++) {
        const g = { w: tf.tensor1d([0.3 * (t + 1), -0.2]) };
        opt.step(g, vars, 1);
        tf.dispose(Object.values(g));
        const d = [0.3 * (t + 1) + 0.5 * w[0], -0.2 + 0.5 * w[1]];
        const b: number[] = buf === null ? d : buf.map((v, i) => 0.9 * v + d[i]);
        buf = b;
        w = w.map((v, i) => v - 0.1 * b[i]);
        expectClose(values(vars.w), w);
      }
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('rmsprop (centered, momentum 0.5): PyTorch formula, eps outside the square root', () => {
      const vars = makeVars({ w: [0.7, -0.4, 0] });
      const opt = new GroupedOptimizer([{ name: 'g', params: ['w'], lr: 0.01, weightDecay: 0, decayMode: 'coupled' }], {
        algorithm: 'rmsprop',
        momentum: 0.5,
        alpha: 0.9,
        centered: true,
        eps: 1e-3,
      });
      let w = [0.7, -0.4, 0];
      let s = [0, 0, 0];
      let ga = [0, 0, 0];
      let buf = [0, 0, 0];
      const gs = [
        [0.5, -1, 2],
        [0.1, 0.3, -0.7],
        [-0.4, 0.2, 0.9],
      ];
      for (const gv of gs) {
        const g = { w: tf.tensor1d(gv) };
        opt.step(g, vars);
        tf.dispose(Object.values(g));
        s = s.map((v, i) => 0.9 * v + 0.1 * gv[i] * gv[i]);
        ga = ga.map((v, i) => 0.9 * v + 0.1 * gv[i]);
        const avg = s.map((v, i) => Math.sqrt(v - ga[i] * ga[i]) + 1e-3);
        buf = buf.map((v, i) => 0.5 * v + gv[i] / avg[i]);
        w = w.map((v, i) => v - 0.01 * buf[i]);
        expectClose(values(vars.w), w, 5e-6);
      }
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('lars: trust ratio η‖w‖/(‖g‖+wd‖w‖) scales the decayed gradient; not for non-adaptive groups; 1 for zero weights', () => {
      const vars = makeVars({ k: [3, 4], b: [0.5, 0.5], z: [0, 0] });
      const groups: ParamGroup[] = [
        { name: 'k', params: ['k'], lr: 0.1, weightDecay: 0.01, decayMode: 'coupled' },
        { name: 'b', params: ['b'], lr: 0.1, weightDecay: 0, decayMode: 'coupled', adaptive: false },
        { name: 'z', params: ['z'], lr: 0.1, weightDecay: 0, decayMode: 'coupled' },
      ];
      const opt = new GroupedOptimizer(groups, { algorithm: 'lars', momentum: 0.9, trustCoefficient: 0.001 });
      const gk = [0.6, -0.8]; // ‖g‖ = 1, ‖w‖ = 5
      const grads = { k: tf.tensor1d(gk), b: tf.tensor1d([1, 2]), z: tf.tensor1d([1, -1]) };
      opt.step(grads, vars);
      const ratio = (0.001 * 5) / (1 + 0.01 * 5);
      expectClose(values(vars.k), [3 - 0.1 * ratio * (0.6 + 0.03), 4 - 0.1 * ratio * (-0.8 + 0.04)]);
      expectClose(values(vars.b), [0.5 - 0.1 * 1, 0.5 - 0.1 * 2]);
      expectClose(values(vars.z), [-0.1, 0.1]);
      // Second step: momentum buffer carries the first (scaled) step.
      const k1 = values(vars.k);
      const n1 = Math.hypot(k1[0], k1[1]);
      opt.step({ k: grads.k }, vars);
      const r2 = (0.001 * n1) / (1 + 0.01 * n1);
      const d1 = [ratio * (0.6 + 0.03), ratio * (-0.8 + 0.04)];
      const d2 = [r2 * (0.6 + 0.01 * k1[0]), r2 * (-0.8 + 0.01 * k1[1])];
      expectClose(
        values(vars.k),
        k1.map((v, i) => v - 0.1 * (0.9 * d1[i] + d2[i])),
        1e-5,
      );
      tf.dispose(Object.values(grads));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('l1 decay adds wd·sign(w) to the gradient (0 at w = 0)', () => {
      const vars = makeVars({ w: [2, -3, 0] });
      const opt = new GroupedOptimizer([{ name: 'g', params: ['w'], lr: 0.1, weightDecay: 0.5, decayMode: 'l1' }], { algorithm: 'sgd' });
      const g = { w: tf.tensor1d([1, 1, 1]) };
      opt.step(g, vars);
      expectClose(values(vars.w), [2 - 0.1 * 1.5, -3 - 0.1 * 0.5, -0.1]);
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('decoupled sgd: W ← W − lr·g − lr·wd·W, the decay leaving the gradient alone', () => {
      const vars = makeVars({ w: [2, -3] });
      const opt = new GroupedOptimizer([{ name: 'g', params: ['w'], lr: 0.1, weightDecay: 0.2, decayMode: 'decoupled' }], { algorithm: 'sgdw' });
      const g = { w: tf.tensor1d([1, -1]) };
      opt.step(g, vars, 0.5); // lr 0.05
      expectClose(values(vars.w), [2 - 0.05 * 1 - 0.05 * 0.2 * 2, -3 + 0.05 - 0.05 * 0.2 * -3]);
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });
  });

  describe('state keyed by variable name', () => {
    function trajectory(groups: ParamGroup[], order: string[], algorithm: Algorithm): Record<string, number[]> {
      const init: Record<string, number[]> = { k1: [0.5, -1, 2], b1: [0.1, 0.2], k2: [1, 2, 3, 4] };
      const vars: Record<string, tf.Variable> = {};
      for (const k of order) vars[k] = tf.tidy(() => tf.variable(tf.tensor1d(init[k]), true));
      const opt = new GroupedOptimizer(groups, { algorithm });
      for (let i = 0; i < 4; i++) {
        const g = gradsOf(vars);
        // Feed the gradients in `order` too: a positional optimizer would mix slots up here.
        const ordered: Record<string, tf.Tensor> = {};
        for (const k of order) ordered[k] = g[k];
        opt.step(ordered, vars);
        tf.dispose(Object.values(g));
      }
      const out: Record<string, number[]> = {};
      for (const k of order) out[k] = values(vars[k]);
      opt.dispose();
      tf.dispose(Object.values(vars));
      return out;
    }

    it('reordering groups, params and gradients changes nothing (adam)', () => {
      const a = trajectory(GROUPS(), ['k1', 'b1', 'k2'], 'adam');
      const reversed = GROUPS()
        .reverse()
        .map((g) => ({ ...g, params: [...g.params].reverse() }));
      const b = trajectory(reversed, ['k2', 'b1', 'k1'], 'adam');
      for (const k of Object.keys(a)) expect(b[k]).to.deep.equal(a[k]);
    });

    it('variables without a gradient are skipped and keep their slots untouched', () => {
      const vars = makeVars({ k1: [1, 1, 1], b1: [1, 1], k2: [1, 1, 1, 1] });
      const opt = new GroupedOptimizer(GROUPS(), { algorithm: 'adam' });
      const g = gradsOf(vars);
      opt.step(g, vars);
      const k2Before = values(vars.k2);
      opt.step({ k1: g.k1 }, vars);
      expect(values(vars.k2)).to.deep.equal(k2Before);
      const st = opt.getState();
      expect(st.step).to.equal(2);
      expect(st.vars.k1.step).to.equal(2);
      expect(st.vars.k2.step).to.equal(1);
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('getState/setState: resuming from a checkpoint continues bit for bit (momentum, adam, rmsprop)', () => {
      for (const algorithm of ['momentum', 'adam', 'rmsprop'] as Algorithm[]) {
        const va = makeVars({ k1: [0.5, -1, 2], b1: [0.1, 0.2], k2: [1, 2, 3, 4] });
        const a = new GroupedOptimizer(GROUPS(), { algorithm, momentum: 0.9 });
        const stepN = (opt: GroupedOptimizer, vars: Record<string, tf.Variable>, n: number) => {
          for (let i = 0; i < n; i++) {
            const g = gradsOf(vars);
            opt.step(g, vars, 0.7);
            tf.dispose(Object.values(g));
          }
        };
        stepN(a, va, 3);
        const state = a.getState();
        // A checkpoint is plain data: survive a JSON-like copy of the arrays.
        const copy = JSON.parse(JSON.stringify(state, (_k, v) => (v instanceof Float32Array ? Array.from(v) : v)));
        for (const vs of Object.values(copy.vars) as any[]) for (const s of Object.values(vs.slots) as any[]) s.values = Float32Array.from(s.values);
        const weights = Object.fromEntries(Object.entries(va).map(([k, v]) => [k, values(v)]));
        stepN(a, va, 3);
        const vb = makeVars(weights);
        const b = new GroupedOptimizer(GROUPS(), { algorithm, momentum: 0.9 });
        expect(b.setState(copy).ignored).to.deep.equal([]);
        expect(b.iterations).to.equal(3);
        stepN(b, vb, 3);
        for (const k of Object.keys(va)) expect(values(vb[k]), `${algorithm} ${k}`).to.deep.equal(values(va[k]));
        a.dispose();
        b.dispose();
        tf.dispose([...Object.values(va), ...Object.values(vb)]);
      }
    });

    it('setState skips variables that left every group and rejects another algorithm', () => {
      const vars = makeVars({ k1: [1, 2, 3], b1: [1, 2], k2: [1, 1, 1, 1] });
      const a = new GroupedOptimizer(GROUPS(), { algorithm: 'momentum' });
      const g = gradsOf(vars);
      a.step(g, vars);
      const state = a.getState();
      const b = new GroupedOptimizer([GROUPS()[0]], { algorithm: 'momentum' });
      expect(b.setState(state).ignored).to.deep.equal(['k2']);
      const c = new GroupedOptimizer(GROUPS(), { algorithm: 'adam' });
      expect(() => c.setState(state)).to.throw(ConfigError, /optimizer\.algorithm/);
      tf.dispose(Object.values(g));
      [a, b, c].forEach((o) => o.dispose());
      tf.dispose(Object.values(vars));
    });
  });

  describe('lr factor and norms', () => {
    it('effective lr = group.lr × lrFactor, reported per group', () => {
      const vars = makeVars({ k1: [1, 2, 3], b1: [1, 2], k2: [1, 1, 1, 1] });
      const opt = new GroupedOptimizer(GROUPS(), { algorithm: 'sgd' });
      const g = gradsOf(vars);
      const before = values(vars.k2);
      const gk2 = values(g.k2);
      const r = opt.step(g, vars, 0.25);
      expect(r.lrs).to.deep.equal({ a: 0.05 * 0.25, b: 0.2 * 0.25 });
      expectClose(
        values(vars.k2),
        before.map((w, i) => w - 0.05 * gk2[i]),
      );
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('norms: ‖Δw‖ and ‖w‖ per variable and per group equal a separate computation', () => {
      const vars = makeVars({ k1: [0.5, -1, 2], b1: [0.1, 0.2], k2: [1, 2, 3, 4] });
      const opt = new GroupedOptimizer(WDECOUPLED(), { algorithm: 'adamw' });
      const g = gradsOf(vars);
      const before = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, values(v)]));
      const r = opt.step(g, vars, 1, { norms: true });
      expect(r.norms).to.not.equal(undefined);
      const sq = (a: number[]) => a.reduce((s, x) => s + x * x, 0);
      const groupSq: Record<string, { u: number; w: number }> = { a: { u: 0, w: 0 }, b: { u: 0, w: 0 } };
      for (const [k, v] of Object.entries(vars)) {
        const after = values(v);
        const du = sq(after.map((x, i) => x - before[k][i]));
        const ww = sq(after);
        expect(r.norms!.vars[k].update).to.be.closeTo(Math.sqrt(du), 1e-6 * Math.sqrt(du) + 1e-9);
        expect(r.norms!.vars[k].weight).to.be.closeTo(Math.sqrt(ww), 1e-6 * Math.sqrt(ww));
        const grp = k === 'k2' ? 'b' : 'a';
        groupSq[grp].u += du;
        groupSq[grp].w += ww;
      }
      for (const grp of ['a', 'b']) {
        expect(r.norms!.groups[grp].update).to.be.closeTo(Math.sqrt(groupSq[grp].u), 1e-6);
        expect(r.norms!.groups[grp].weight).to.be.closeTo(Math.sqrt(groupSq[grp].w), 1e-6);
      }
      expect(opt.step(g, vars).norms).to.equal(undefined); // opt-in
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });

    it('updateGroup changes a group lr between steps', () => {
      const vars = makeVars({ k1: [1, 2, 3], b1: [1, 2], k2: [1, 1, 1, 1] });
      const opt = new GroupedOptimizer(GROUPS(), { algorithm: 'sgd' });
      opt.updateGroup('b', { lr: 0 });
      const g = gradsOf(vars);
      opt.step(g, vars);
      expect(values(vars.k2)).to.deep.equal([1, 1, 1, 1]);
      expect(opt.groups.find((x) => x.name === 'b')!.lr).to.equal(0);
      expect(() => opt.updateGroup('b', { momentum: 1 })).to.throw(ConfigError, /groups\.b\.momentum/);
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });
  });

  describe('bad input', () => {
    const one = (patch: Partial<ParamGroup>): ParamGroup[] => [{ name: 'g', params: ['w'], lr: 0.1, weightDecay: 0, decayMode: 'coupled', ...patch }];
    it('unknown algorithm', () => {
      expect(() => new GroupedOptimizer(one({}), { algorithm: 'adagrad' as Algorithm })).to.throw(
        ConfigError,
        /^optimizer\.algorithm: unknown algorithm "adagrad"/,
      );
    });
    it('momentum outside [0, 1)', () => {
      expect(() => new GroupedOptimizer(one({ momentum: 1 }), { algorithm: 'momentum' })).to.throw(
        ConfigError,
        /groups\.g\.momentum: momentum must be in \[0, 1\)/,
      );
      expect(() => new GroupedOptimizer(one({}), { algorithm: 'momentum', momentum: -0.1 })).to.throw(ConfigError, /groups\.g\.momentum/);
    });
    it('negative lr or weight decay', () => {
      expect(() => new GroupedOptimizer(one({ lr: -1 }), { algorithm: 'sgd' })).to.throw(ConfigError, /groups\.g\.lr/);
      expect(() => new GroupedOptimizer(one({ weightDecay: -1 }), { algorithm: 'sgd' })).to.throw(ConfigError, /groups\.g\.weightDecay/);
    });
    it('a variable in two groups, duplicate group names, decay mode contradicting adamw', () => {
      expect(() => new GroupedOptimizer([...one({}), { ...one({})[0], name: 'h' }], { algorithm: 'sgd' })).to.throw(ConfigError, /already in group "g"/);
      expect(() => new GroupedOptimizer([...one({}), { ...one({})[0], params: ['x'] }], { algorithm: 'sgd' })).to.throw(ConfigError, /duplicate group name/);
      expect(() => new GroupedOptimizer(one({}), { algorithm: 'adamw' })).to.throw(ConfigError, /groups\.g\.decayMode: "coupled" contradicts adamw/);
    });
    it('a gradient for a variable in no group (a frozen variable was differentiated) throws', () => {
      const vars = makeVars({ w: [1], x: [1] });
      const opt = new GroupedOptimizer(one({}), { algorithm: 'sgd' });
      const g = { x: tf.tensor1d([1]) };
      expect(() => opt.step(g, vars)).to.throw(/"x", which is in no parameter group/);
      tf.dispose(Object.values(g));
      opt.dispose();
      tf.dispose(Object.values(vars));
    });
  });
});

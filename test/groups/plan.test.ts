import { expect } from 'chai';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../../src/errors';
import { collapseByLayer, groupingSchema, planGroups, type LayerInfo } from '../../src/groups';
import { GroupedOptimizer, optimizerSchema, resolveOptimizer } from '../../src/optim';
import { readReference, replayCase } from '../../scripts/replay-optimizer-reference';

/** A toy backbone of `stages` stages (conv + bn each) and a dense head. */
function toyLayers(stages = 6): LayerInfo[] {
  const out: LayerInfo[] = [];
  for (let s = 0; s < stages; s++) {
    out.push({
      name: `block${s}_conv`,
      stage: s,
      isHead: false,
      variables: [
        { name: `block${s}_conv/kernel`, shape: [3, 3, 4, 4], role: 'kernel' },
        { name: `block${s}_conv/bias`, shape: [4], role: 'bias' },
      ],
    });
    out.push({
      name: `block${s}_bn`,
      stage: s,
      isHead: false,
      variables: [
        { name: `block${s}_bn/gamma`, shape: [4], role: 'norm' },
        { name: `block${s}_bn/beta`, shape: [4], role: 'norm' },
      ],
    });
  }
  out.push({
    name: 'head_dense',
    stage: stages,
    isHead: true,
    variables: [
      { name: 'head_dense/kernel', shape: [4, 5], role: 'kernel' },
      { name: 'head_dense/bias', shape: [5], role: 'bias' },
    ],
  });
  return out;
}

const row = (plan: ReturnType<typeof planGroups>, name: string) => plan.rows.find((r) => r.name === name)!;

describe('planGroups', () => {
  describe('defaults: three stepped groups at 0.001/0.01/0.1, biases 2x without decay', () => {
    it('3 groups at 0.001 / 0.01 / 0.1, head in the last, biases 2x without decay, 5e-4 on kernels only, norm 1x without decay, momentum 0.9', () => {
      const plan = planGroups(toyLayers(6));
      expect(plan.algorithm).to.equal('momentum');
      expect(plan.optimizer.momentum).to.equal(0.9);
      expect(plan.layerGroups.map((g) => [g.name, g.lr])).to.deep.equal([
        ['g0', 0.001],
        ['g1', 0.01],
        ['g2', 0.1],
      ]);
      expect(plan.layerGroups[0].layers).to.deep.equal(['block0_conv', 'block0_bn', 'block1_conv', 'block1_bn']);
      expect(plan.layerGroups[2].layers.at(-1)).to.equal('head_dense');
      expect(row(plan, 'block0_conv/kernel')).to.include({ group: 'g0', lr: 0.001, weightDecay: 5e-4, decayMode: 'coupled', frozen: false, role: 'kernel' });
      expect(row(plan, 'block0_conv/bias')).to.include({ lr: 0.002, weightDecay: 0 });
      expect(row(plan, 'block3_bn/gamma')).to.include({ group: 'g1', lr: 0.01, weightDecay: 0, role: 'norm' });
      expect(row(plan, 'head_dense/kernel')).to.include({ group: 'g2', lr: 0.1, weightDecay: 5e-4 });
      expect(row(plan, 'head_dense/bias')).to.include({ group: 'g2', lr: 0.2, weightDecay: 0 });
      expect(plan.frozen).to.deep.equal([]);
      expect(plan.trainable).to.have.length(plan.rows.length);
      expect(plan.warnings).to.deep.equal([]);
      // Every trainable variable is in exactly one ParamGroup with its row's lr and decay.
      const seen = new Set<string>();
      for (const g of plan.groups) {
        for (const p of g.params) {
          expect(seen.has(p)).to.equal(false);
          seen.add(p);
          expect(row(plan, p)).to.include({ lr: g.lr, weightDecay: g.weightDecay, paramGroup: g.name });
        }
      }
      expect(seen.size).to.equal(plan.trainable.length);
    });

    it('the schemas carry these defaults', () => {
      expect(groupingSchema.parse(undefined)).to.deep.include({
        strategy: 'stepped',
        top: 0.1,
        factor: 10,
        groups: 3,
        biasLrMult: 2,
        biasDecayMult: 0,
        normLrMult: 1,
        normDecayMult: 0,
        strict: false,
        rules: [],
      });
      expect(groupingSchema.parse({ biasLrMult: 1 })).to.deep.include({ strategy: 'stepped', biasLrMult: 1 });
      expect(optimizerSchema.parse({})).to.deep.include({ algorithm: 'momentum', weightDecay: 5e-4, eps: 1e-8, trustCoefficient: 0.001 });
      expect(resolveOptimizer({})).to.deep.include({ momentum: 0.9, decayMode: 'coupled' });
      expect(resolveOptimizer({ algorithm: 'rmsprop' }).momentum).to.equal(0);
      expect(resolveOptimizer({ algorithm: 'adamw' }).decayMode).to.equal('decoupled');
      expect(resolveOptimizer({ algorithm: 'sgdw' }).decayMode).to.equal('decoupled');
    });
  });

  describe('strategies', () => {
    it('stepped {top, factor, groups}', () => {
      const plan = planGroups(toyLayers(6), { strategy: 'stepped', top: 0.05, factor: 2, groups: 2 });
      expect(plan.layerGroups.map((g) => g.lr)).to.deep.equal([0.025, 0.05]);
      expect(plan.layerGroups[0].layers).to.have.length(6); // stages 0..2
    });

    it('geometric: slice(lo, hi) over the auto split', () => {
      const plan = planGroups(toyLayers(6), { strategy: 'geometric', lo: 1e-4, hi: 1e-2, groups: 3 });
      const lrs = plan.layerGroups.map((g) => g.lr);
      expect(lrs[0]).to.equal(1e-4);
      expect(lrs[1]).to.be.closeTo(1e-3, 1e-15);
      expect(lrs[2]).to.equal(1e-2);
    });

    it('auto with explicit lrs; head joins the last group', () => {
      const plan = planGroups(toyLayers(4), { strategy: 'auto', groups: 2, lrs: [0.3, 0.7] });
      expect(plan.layerGroups.map((g) => [g.name, g.lr, g.layers.length])).to.deep.equal([
        ['g0', 0.3, 4],
        ['g1', 0.7, 5],
      ]);
      expect(() => planGroups(toyLayers(4), { strategy: 'auto', groups: 2, lrs: [0.3] })).to.throw(ConfigError, /^groups\.lrs: 1 rates given for 2 groups$/);
    });

    it('layerDecay: one group per stage, lr·d^(S−i), head at lr; the multipliers still apply', () => {
      const plan = planGroups(toyLayers(3), { strategy: 'layerDecay', lr: 0.08, decay: 0.5 });
      expect(plan.layerGroups.map((g) => [g.name, g.lr])).to.deep.equal([
        ['g0', 0.01],
        ['g1', 0.02],
        ['g2', 0.04],
        ['g3', 0.08],
      ]);
      expect(row(plan, 'block0_conv/bias').lr).to.equal(0.02);
      expect(row(plan, 'head_dense/kernel').lr).to.equal(0.08);
    });

    it('rules strategy: one base group, rules move layers into new groups', () => {
      const plan = planGroups(toyLayers(3), { strategy: 'rules', lr: 0.01, rules: [{ match: '^head', group: 'head', lr: 0.5 }] });
      expect(plan.layerGroups.map((g) => [g.name, g.lr, g.layers.length])).to.deep.equal([
        ['base', 0.01, 6],
        ['head', 0.5, 1],
      ]);
      expect(row(plan, 'head_dense/bias').lr).to.equal(1);
    });
  });

  describe('rules', () => {
    it('ordered: the first matching rule that sets a field wins; lrMult, decayMult, decayMode per layer', () => {
      const plan = planGroups(toyLayers(6), {
        rules: [
          { match: 'block5_conv', lrMult: 3 },
          { match: 'block5', lrMult: 100, decayMult: 4 },
          { match: '_bn$', decayMode: 'l1' },
        ],
      });
      expect(row(plan, 'block5_conv/kernel').lr).to.be.closeTo(0.3, 1e-15);
      expect(row(plan, 'block5_conv/kernel').weightDecay).to.equal(5e-4 * 4);
      expect(row(plan, 'block5_bn/gamma')).to.include({ lr: 10, decayMode: 'l1', weightDecay: 0 });
      // block5_conv kernels at 3x form their own ParamGroup inside g2.
      const g = plan.groups.find((x) => x.params.includes('block5_conv/kernel'))!;
      expect(g.name).to.equal('g2/kernel#2');
      expect(g.params).to.deep.equal(['block5_conv/kernel']);
    });

    it('freeze: true, lrMult 0 and a zero role multiplier freeze; frozen variables are in no group', () => {
      const plan = planGroups(toyLayers(6), {
        biasLrMult: 0,
        rules: [
          { match: '^block0_', freeze: true },
          { match: '^block1_', lrMult: 0 },
        ],
      });
      const frozenLayers = new Set(plan.rows.filter((r) => r.frozen).map((r) => r.layer));
      expect([...frozenLayers].sort()).to.include.members(['block0_bn', 'block0_conv', 'block1_bn', 'block1_conv']);
      expect(plan.frozen).to.include.members(['block0_conv/kernel', 'block1_bn/beta', 'head_dense/bias', 'block4_conv/bias']);
      expect(plan.trainable).to.not.include('head_dense/bias');
      expect(row(plan, 'block0_conv/kernel')).to.include({ lr: 0, weightDecay: 0, paramGroup: null });
      const inGroups = plan.groups.flatMap((g) => g.params);
      for (const f of plan.frozen) expect(inGroups).to.not.include(f);
      expect(inGroups.length + plan.frozen.length).to.equal(plan.rows.length);
    });

    it('a rule that matches nothing: warning as data, ConfigError with strict', () => {
      const plan = planGroups(toyLayers(3), { rules: [{ match: '^nope', lrMult: 2 }] });
      expect(plan.warnings).to.deep.equal([{ path: 'groups.rules[0].match', message: '/^nope/ matches no layer' }]);
      expect(() => planGroups(toyLayers(3), { strict: true, rules: [{ match: '^nope', lrMult: 2 }] })).to.throw(
        ConfigError,
        /^groups\.rules\[0\]\.match: \/\^nope\/ matches no layer$/,
      );
    });

    it('a layer matched by two rules with conflicting groups names the layer and both rules', () => {
      expect(() =>
        planGroups(toyLayers(3), {
          rules: [
            { match: 'block1', group: 'g0' },
            { match: '_conv$', group: 'g2' },
          ],
        }),
      ).to.throw(ConfigError, /^groups\.rules\[1\]\.group: layer "block1_conv" is matched by rules\[0\] \(group "g0"\) and rules\[1\] \(group "g2"\)$/);
      // Same group twice is fine.
      expect(() =>
        planGroups(toyLayers(3), {
          rules: [
            { match: 'block1', group: 'g0' },
            { match: '_conv$', group: 'g0' },
          ],
        }),
      ).to.not.throw();
    });

    it('an unknown group without lr, an invalid regex', () => {
      expect(() => planGroups(toyLayers(3), { rules: [{ match: 'block1', group: 'mine' }] })).to.throw(
        ConfigError,
        /^groups\.rules\[0\]\.group: group "mine" is not one of g0, g1, g2/,
      );
      expect(() => planGroups(toyLayers(3), { rules: [{ match: '(' }] })).to.throw(ConfigError, /^groups\.rules\[0\]\.match: invalid regular expression/);
    });
  });

  it('collapseByLayer: one row per layer in order, values per role, frozen only when all variables are', () => {
    const plan = planGroups(toyLayers(3), { biasLrMult: 0, rules: [{ match: '^block0_bn$', freeze: true }] });
    const byLayer = collapseByLayer(plan.rows);
    expect(byLayer.map((l) => l.layer)).to.deep.equal(toyLayers(3).map((l) => l.name));
    const conv = byLayer[0];
    expect(conv).to.deep.include({ layer: 'block0_conv', group: 'g0', frozen: false, variables: ['block0_conv/kernel', 'block0_conv/bias'] });
    expect(conv.lr).to.deep.equal({ kernel: 0.001, bias: 0 });
    expect(conv.weightDecay).to.deep.equal({ kernel: 5e-4, bias: 0 });
    expect(byLayer[1]).to.include({ layer: 'block0_bn', frozen: true });
    expect(byLayer[3].lr).to.deep.equal({ norm: 0.01 });
  });

  describe('bad input names the field', () => {
    const cases: [string, () => unknown, RegExp][] = [
      ['negative multiplier', () => planGroups(toyLayers(), { biasLrMult: -1 }), /^groups\.biasLrMult: biasLrMult must be >= 0$/],
      ['negative rule multiplier', () => planGroups(toyLayers(), { rules: [{ match: 'x', lrMult: -2 }] }), /^groups\.rules\[0\]\.lrMult: lrMult must be >= 0$/],
      ['negative rate', () => planGroups(toyLayers(), { strategy: 'stepped', top: -0.1 }), /^groups\.top: top must be >= 0$/],
      ['negative weight decay', () => planGroups(toyLayers(), undefined, { weightDecay: -1 }), /^optimizer\.weightDecay: weightDecay must be >= 0$/],
      ['momentum 1', () => planGroups(toyLayers(), undefined, { momentum: 1 }), /^optimizer\.momentum: momentum must be in \[0, 1\)$/],
      ['momentum -0.5', () => planGroups(toyLayers(), undefined, { momentum: -0.5 }), /^optimizer\.momentum: momentum must be in \[0, 1\)$/],
      [
        'unknown algorithm',
        () => planGroups(toyLayers(), undefined, { algorithm: 'adagrad' as 'adam' }),
        /^optimizer\.algorithm: unknown algorithm "adagrad"; expected one of sgd, momentum/,
      ],
      ['unknown strategy', () => planGroups(toyLayers(), { strategy: 'magic' } as never), /^groups\.strategy: unknown strategy/],
      ['unknown field', () => planGroups(toyLayers(), { biasLrMul: 2 } as never), /^groups: unknown field\(s\) "biasLrMul"$/],
      [
        'more groups than stages',
        () => planGroups(toyLayers(2), { groups: 3 }),
        /^groups\.groups: 3 groups asked for, but the layers span only 2 backbone stage/,
      ],
      [
        'decayMode contradicting adamw',
        () => planGroups(toyLayers(), undefined, { algorithm: 'adamw', decayMode: 'coupled' }),
        /^optimizer\.decayMode: "coupled" contradicts adamw/,
      ],
      [
        'rule decayMode contradicting adamw',
        () => planGroups(toyLayers(), { rules: [{ match: 'bn', decayMode: 'l1' }] }, { algorithm: 'adamw' }),
        /^groups\.rules\[0\]\.decayMode/,
      ],
      ['geometric lo > hi', () => planGroups(toyLayers(), { strategy: 'geometric', lo: 1, hi: 0.1 }), /^groups\.lo/],
    ];
    for (const [what, fn, re] of cases) {
      it(`${what}`, () => {
        let err: unknown;
        try {
          fn();
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(ConfigError);
        expect((err as Error).message).to.match(re);
        expect((err as Error).message).to.not.include('\n');
      });
    }
  });

  describe('drives GroupedOptimizer: the PyTorch reference conventions through planGroups', () => {
    const ref = readReference(path.join(__dirname, '..', 'fixtures', 'optimizers.json'));
    // The reference's layers: block0/conv, block0/bn, block1/conv, head/dense; role weight = kernel.
    const layers: LayerInfo[] = [];
    for (const p of ref.params) {
      const layer = p.name.slice(0, p.name.lastIndexOf('/'));
      let l = layers.find((x) => x.name === layer);
      if (!l) layers.push((l = { name: layer, stage: 0, isHead: false, variables: [] }));
      l.variables.push({ name: p.name, shape: p.shape, role: p.role === 'weight' ? 'kernel' : p.role });
    }
    const groupOfLayer = (layer: string) => ref.params.find((p) => p.name.startsWith(`${layer}/`))!.group;
    const rules = layers.map((l) => ({ match: `^${l.name}$`, group: groupOfLayer(l.name), lr: ref.hyper.group_lrs[groupOfLayer(l.name)] }));

    before(async () => {
      await tf.setBackend('cpu');
    });

    for (const c of ref.cases) {
      it(`${c.optimizer} / ${c.schedule}`, () => {
        const algorithm = c.optimizer as 'sgd';
        const plan = planGroups(
          layers,
          { strategy: 'rules', lr: 1, biasLrMult: ref.hyper.bias_lr_mult, rules },
          {
            algorithm,
            momentum: c.momentum ?? ref.hyper.momentum,
            weightDecay: algorithm === ('adamw' as string) ? ref.hyper.adamw_weight_decay : ref.hyper.weight_decay,
          },
        );
        // lr column at factor 1 equals the file's lr for constant schedules.
        if (c.schedule === 'constant') for (const r of plan.rows) expect(r.lr, r.name).to.be.closeTo(c.lr[0][r.name], 1e-15);
        const res = replayCase(ref, c, { algorithm: plan.algorithm, groups: plan.groups });
        expect(res.ok, JSON.stringify(res)).to.equal(true);
        const opt = new GroupedOptimizer(plan.groups, { algorithm: plan.algorithm });
        opt.dispose();
      });
    }
  });
});

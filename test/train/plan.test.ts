/** buildPlan, the library's dry run, against hand-computed rates: what `layertune plan` prints, without the CLI. */
import { expect } from 'chai';
import { buildPlan, prepare, type JobInput } from '../../src/index';
import { disposeNetwork } from '../../src/tune/parts';
import { MemorySource, dataContainer } from '../helpers/memory-source';
import { tmpDir } from '../helpers/images';

describe('buildPlan (library)', function () {
  this.timeout(120000);

  it('per variable and per layer: stepped groups × role multipliers × linear warmup and a multistep decay, by hand', async () => {
    // 12 training images, batch 4: 3 optimizer steps an epoch, 12 in 4 epochs
    const job = {
      model: { size: 32 },
      backend: 'cpu',
      out: tmpDir(),
      train: { epochs: 4, batch: 4 },
      lr: { scaling: 'none' },
      groups: { strategy: 'stepped', top: 0.1 },
      schedule: { type: 'multistep', milestones: [2], gamma: 0.1 },
      warmup: { type: 'linear', steps: 2, startFactor: 0.25 },
    } as JobInput;
    const p = await prepare(job, { log: () => undefined, container: dataContainer(() => new MemorySource(['a', 'b'], 6, 2)) });
    try {
      const plan = buildPlan(p);
      expect(p.stepsPerEpoch).to.equal(3);
      // step 0: 0.25 of the rate at the end of warmup (1); step 2 (epoch 0): 1; step 11 (epoch 3, past milestone 2): 0.1
      expect(plan.factors).to.deep.equal({ start: 0.25, warmupEnd: 1, end: 0.1 });
      const v = (name: string) => plan.variables.find((x) => x.name === name)!;
      // the head is in the top group g2 (0.1); its bias at the default biasLrMult 2, without decay
      const kernel = v('lt_head_dense/kernel');
      expect(kernel).to.include({ group: 'g2', role: 'kernel', frozen: false, weightDecay: 5e-4, algorithm: 'momentum', momentum: 0.9 });
      expect(kernel.lr.start).to.be.closeTo(0.025, 1e-15);
      expect(kernel.lr.warmupEnd).to.be.closeTo(0.1, 1e-15);
      expect(kernel.lr.end).to.be.closeTo(0.01, 1e-15);
      const bias = v('lt_head_dense/bias');
      expect(bias).to.include({ group: 'g2', role: 'bias', weightDecay: 0 });
      expect([bias.lr.start, bias.lr.warmupEnd, bias.lr.end].map((x) => Number(x.toPrecision(12)))).to.deep.equal([0.05, 0.2, 0.02]);
      // the lowest group g0 (0.001) at the end of the run: 0.001 × 0.1
      const g0 = plan.variables.find((x) => x.group === 'g0' && x.role === 'kernel')!;
      expect(g0.lr.end).to.be.closeTo(1e-4, 1e-18);
      // one row per variable of the group plan; by layer, the head's two variables collapse into one row with both roles
      expect(plan.variables.map((x) => x.name)).to.deep.equal(p.plan.rows.map((r) => r.name));
      const head = plan.layers.find((l) => l.layer === 'lt_head_dense')!;
      expect(head.variables).to.deep.equal(['lt_head_dense/kernel', 'lt_head_dense/bias']);
      expect(head.lr.kernel).to.deep.equal(kernel.lr);
      expect(head.lr.bias).to.deep.equal(bias.lr);
      expect(plan.lr.effectiveBatch).to.equal(4);
      // g0's rate 0.001 against weight decay 5e-4 is 2×, below the 10× the lr/wd rule of thumb asks for
      expect(plan.warnings).to.have.length(1);
      expect(plan.warnings[0]).to.match(/^group g0\/kernel: lr 1\.00e-3 \/ weight decay 5\.00e-4 = 2\.00, outside 10…1e\+4/);
    } finally {
      disposeNetwork(p.network);
    }
  });
});
